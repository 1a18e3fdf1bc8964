"""Training the neural vocoder: random one-second segments of a voice's recordings, their mels
in, their samples out; resumable, validated by copy synthesis of the dev recordings.

Two stages, one loop: first on the recordings' own mels (``data.predicted_mels: false``), then,
starting from that run (``train.init_from``), on the mels the voice's acoustic model predicts for
the same recordings when it is given their measured durations (``data.predicted_mels: true``):
those are what the vocoder hears at synthesis time, smoother than real mels, and the second
stage teaches it to make the real recording's audio from them.

Example:
    >>> config = load_vocoder_config("recipes/synthetic/tts/hparams/vocoder.yaml")
    >>> best = train_vocoder(config)     # exp/vocoder/best.pt, last.pt, metrics.jsonl, samples/

Each validation writes ``samples/step-NNNNNN/*.wav`` (the first dev recordings, vocoded) and
``spectrograms/step-NNNNNN.png`` (log-mels of the recording above, the vocoder's audio below).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from speechseq.audio import save_audio
from speechseq.checkpoint import (
    VOCODER_FORMAT,
    load_checkpoint,
    load_vocoder,
    save_checkpoint,
    vocoder_state,
)
from speechseq.config import TrainingConfig, build_section, read_experiment
from speechseq.data import TtsDataset, read_manifest
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.models import IstftVocoder, IstftVocoderConfig
from speechseq.optim import make_optimizer, restore_scheduler
from speechseq.text import CharTokenizer
from speechseq.tracking import MetricsLog
from speechseq.training import prepare_out_dir
from speechseq.tts.config import tts_feature_config
from speechseq.tts.plotting import alignment_image, write_png
from speechseq.tts.vocoder.data import VocoderCorpus, VocoderDataConfig, load_corpus
from speechseq.tts.vocoder.losses import VocoderLoss, VocoderLossConfig, spectral_convergence

__all__ = [
    "VocoderDataConfig",
    "VocoderExperimentConfig",
    "VocoderValidationConfig",
    "load_vocoder_config",
    "train_vocoder",
]


@dataclass(frozen=True)
class VocoderValidationConfig:
    """Validation by copy synthesis of the dev recordings.

    Args:
        every_steps: validate every this many steps (and at the end).
        max_utterances: dev recordings vocoded.
        samples: of these, how many are written as audio and drawn.
        pesq: also measure wideband PESQ against the recording (needs the ``pesq`` package,
            the ``bench`` extra).
        best_by: ``mel`` (lowest dev log-mel L1) or ``pesq`` (highest PESQ) picks ``best.pt``.
    """

    every_steps: int = 500
    max_utterances: int = 30
    samples: int = 3
    pesq: bool = False
    best_by: str = "mel"

    def __post_init__(self) -> None:
        if self.best_by not in ("mel", "pesq"):
            raise ValueError(f"best_by must be mel or pesq, not {self.best_by!r}")
        if self.best_by == "pesq" and not self.pesq:
            raise ValueError("best_by pesq needs pesq: true")


VOCODER_TRAIN_DEFAULTS = {
    "out_dir": "exp/vocoder",
    "max_steps": 20000,
    "lr": 5e-4,
    "weight_decay": 1e-6,
    "warmup_steps": 500,
    "final_lr_ratio": 0.1,
    "grad_clip": 10.0,
    "checkpoint_every": 500,
    "log_every": 50,
}


@dataclass(frozen=True)
class VocoderExperimentConfig:
    """Everything ``speechseq train vocoder`` needs, one field per YAML section (``data``,
    ``model``, ``loss``, ``validation``, ``train``; ``train.max_steps`` sets the length)."""

    data: VocoderDataConfig = field(default_factory=VocoderDataConfig)
    model: IstftVocoderConfig = field(default_factory=IstftVocoderConfig)
    loss: VocoderLossConfig = field(default_factory=VocoderLossConfig)
    validation: VocoderValidationConfig = field(default_factory=VocoderValidationConfig)
    train: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(**VOCODER_TRAIN_DEFAULTS)  # type: ignore[arg-type]
    )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_vocoder_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> VocoderExperimentConfig:
    """Read a vocoder YAML experiment file and apply ``section.key`` overrides.

    Raises:
        SpeechseqError: missing file, bad YAML, unknown section or key, or a bad value.
    """
    classes = {
        "data": VocoderDataConfig,
        "model": IstftVocoderConfig,
        "loss": VocoderLossConfig,
        "validation": VocoderValidationConfig,
        "train": TrainingConfig,
    }
    paths = {
        "data": ("train_manifest", "dev_manifest", "voice", "train_durations", "dev_durations"),
        "train": ("out_dir", "init_from"),
    }
    _, sections, where = read_experiment(path, list(classes), overrides, paths)
    defaults = {"train": VOCODER_TRAIN_DEFAULTS}
    built = {
        name: build_section(cls, {**defaults.get(name, {}), **sections[name]}, f"{where} [{name}]")
        for name, cls in classes.items()
    }
    config = VocoderExperimentConfig(**built)
    if not config.data.train_manifest:
        raise SpeechseqError(f"{where} [data]: train_manifest is required")
    if config.data.predicted_mels and not (config.data.voice and config.data.train_durations):
        raise SpeechseqError(
            f"{where} [data]: predicted_mels needs voice (a duration model) and train_durations"
        )
    return config


def _pesq(reference: torch.Tensor, degraded: torch.Tensor, rate: int) -> float:
    from pesq import pesq  # pyright: ignore[reportMissingImports]  # the bench extra

    return float(pesq(rate, reference.double().numpy(), degraded.double().numpy(), "wb"))


def spectrogram_image(top: torch.Tensor, bottom: torch.Tensor) -> np.ndarray:
    """Two (T, n_mels) log-mels drawn one above the other, low frequencies at the bottom of
    each, on one colour scale (the top one's loudest 80 dB)."""
    high = float(top.max())
    low = high - 80 / 10 * math.log(10)

    def scaled(mel: torch.Tensor) -> torch.Tensor:
        return ((mel.clamp(min=low) - low) / (high - low)).clamp(max=1.0)

    gap = torch.zeros(top.shape[0], 2)
    frames = min(top.shape[0], bottom.shape[0])
    stacked = torch.cat([scaled(bottom[:frames]), gap[:frames], scaled(top[:frames])], dim=1)
    return alignment_image(stacked, width=min(1600, 2 * frames), height=400)


@torch.no_grad()
def validate_vocoder(
    model: IstftVocoder,
    dev: VocoderCorpus,
    loss: VocoderLoss,
    config: VocoderValidationConfig,
    out_dir: Path | None,
    step: int,
) -> dict[str, float]:
    """Copy synthesis of the dev recordings: log-mel L1 and spectral convergence against the
    recording (and PESQ with ``config.pesq``); writes samples and a spectrogram image."""
    model.eval()
    sums: dict[str, float] = {"dev_mel": 0.0, "dev_sc": 0.0}
    pesqs = []
    rate = loss.feature_config.sample_rate
    count = min(len(dev), config.max_utterances)
    for i in range(count):
        features, waveform = dev.features[i], dev.waveforms[i]
        pred = model.infer(features[None])[0]  # (N,)
        target = waveform[: pred.numel()]
        pred_mel, target_mel = loss.log_mel(pred), loss.log_mel(target)  # (T, n_mels)
        sums["dev_mel"] += float((pred_mel - target_mel).abs().mean())
        c = model.config
        p, t = (
            torch.stft(x, c.n_fft, c.hop_length, c.n_fft, loss.model_window, return_complex=True)
            for x in (pred, target)
        )
        sums["dev_sc"] += float(spectral_convergence(p.abs(), t.abs()))
        if config.pesq:
            pesqs.append(_pesq(target, pred, rate))
        if out_dir is not None and i < config.samples:
            folder = out_dir / "samples" / f"step-{step:06d}"
            folder.mkdir(parents=True, exist_ok=True)
            save_audio(folder / f"dev-{i:02d}.wav", pred.clamp(-1, 1), rate)
            if i == 0:
                images = out_dir / "spectrograms"
                images.mkdir(exist_ok=True)
                write_png(images / f"step-{step:06d}.png", spectrogram_image(target_mel, pred_mel))
    model.train()
    metrics = {k: v / max(1, count) for k, v in sums.items()}
    if pesqs:
        metrics["dev_pesq"] = float(np.mean(pesqs))
    return metrics


def _score(metrics: dict[str, float], best_by: str) -> float:
    """Lower is better."""
    return -metrics["dev_pesq"] if best_by == "pesq" else metrics["dev_mel"]


def train_vocoder(
    config: VocoderExperimentConfig, resume: bool = False, progress: bool = True
) -> Path:
    """Train a vocoder as ``config`` says; returns the path of the best checkpoint.

    Args:
        config: the experiment.
        resume: continue from ``out_dir/last.pt`` if it exists (else start fresh).
        progress: show progress bars on stderr.

    Raises:
        SpeechseqError: bad manifests or voice, an occupied ``out_dir`` without ``resume``…
    """
    tc, data = config.train, config.data
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    if config.validation.pesq:
        try:
            import pesq  # noqa: F401  # pyright: ignore[reportMissingImports]
        except ImportError:
            raise SpeechseqError(
                "validation.pesq needs the pesq package: pip install 'speechseq[bench]'"
            ) from None
    out_dir, state = prepare_out_dir(config, resume, VOCODER_FORMAT)
    log = MetricsLog(out_dir / "metrics.jsonl", tc.tensorboard)
    torch.manual_seed(tc.seed)

    if state is not None:
        feature_config = FeatureConfig.from_dict(state["feature_config"])
    elif data.voice:
        feature_config = FeatureConfig.from_dict(
            load_checkpoint(data.voice, expected_format=None)["feature_config"]
        )
    else:
        from speechseq.tts.train import tts_feature_stats

        feature_config = tts_feature_config(16000)
        stats_set = TtsDataset(
            read_manifest(data.train_manifest)[: data.max_utterances],
            FeatureExtractor(dataclasses.replace(feature_config, normalize="none")),
            CharTokenizer(),
            data.trim_db,
            data.trim_margin,
        )
        feature_config = feature_config.with_stats(*tts_feature_stats(stats_set))
    if feature_config.hop_length != config.model.hop_length:
        raise SpeechseqError(
            f"model.hop_length {config.model.hop_length} must be the mels' hop, "
            f"{feature_config.hop_length}"
        )
    train = load_corpus(
        data.train_manifest,
        feature_config,
        data,
        data.train_durations,
        data.max_utterances,
        progress,
    )
    dev_data = dataclasses.replace(data, real_mel_share=0.0)  # validate on what it will hear
    dev = (
        load_corpus(data.dev_manifest, feature_config, dev_data, data.dev_durations, None, progress)
        if data.dev_manifest
        else None
    )

    model = IstftVocoder(config.model)
    if state is None and tc.init_from:
        start, start_features, _ = load_vocoder(tc.init_from)
        if start.config != config.model:
            raise SpeechseqError(f"{tc.init_from}: a vocoder of another shape than model")
        model.load_state_dict(start.state_dict())
    loss_fn = VocoderLoss(config.loss, feature_config, config.model)
    optimizer, scheduler = make_optimizer(model, tc, tc.max_steps or 1)
    generator = torch.Generator().manual_seed(tc.seed)
    step, compute, best = 0, 0.0, math.inf
    if state is not None:
        ts = state["train_state"]
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(ts["optimizer"])
        restore_scheduler(scheduler, ts["scheduler"])
        generator.set_state(ts["generator"])
        torch.set_rng_state(ts["rng"])
        step, compute, best = ts["step"], ts["compute_seconds"], ts["best"]

    def save(name: str, meta: dict | None = None) -> None:
        ckpt = vocoder_state(model, feature_config)
        if name == "last.pt":
            ckpt["train_state"] = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "rng": torch.get_rng_state(),
                "step": step,
                "epoch": 0,
                "compute_seconds": compute,
                "best": best,
                "config": config.to_dict(),
            }
        ckpt["meta"] = {"step": step, "compute_seconds": round(compute), **(meta or {})}
        save_checkpoint(ckpt, out_dir / name)

    total = tc.max_steps or 1
    started = time.monotonic()
    bar = tqdm(total=total, initial=step, desc="vocoder", unit="step", disable=not progress)
    model.train()
    sums: dict[str, float] = {}
    count = 0
    while step < total:
        begun = time.monotonic()
        feats, target, context = train.batch(
            data.batch_size, data.segment_frames, config.model.n_fft, generator
        )
        pred, log_magnitude, phase = model(feats)
        loss, parts = loss_fn(pred, target, log_magnitude, phase, loss_fn.target_spectrum(context))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        compute += time.monotonic() - begun
        for k, v in {"loss": float(loss.detach()), **parts, "grad_norm": float(grad_norm)}.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        bar.update(1)
        if step % tc.log_every == 0:
            row = {k: v / count for k, v in sums.items()}
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            log.write(
                {
                    "step": step,
                    **row,
                    "lr": scheduler.get_last_lr()[0],
                    "elapsed": time.monotonic() - started,
                    "compute": compute,
                }
            )
            sums, count = {}, 0
        out_of_time = tc.max_minutes is not None and (
            time.monotonic() - started > 60 * tc.max_minutes
        )
        if dev is not None and (
            step % config.validation.every_steps == 0 or step == total or out_of_time
        ):
            metrics = validate_vocoder(model, dev, loss_fn, config.validation, out_dir, step)
            log.write(
                {"step": step, **metrics, "elapsed": time.monotonic() - started, "compute": compute}
            )
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            bar.write(f"step {step}: {shown}")
            score = _score(metrics, config.validation.best_by)
            if score < best:
                best = score
                save("best.pt", metrics)
        if step % tc.checkpoint_every == 0 or step == total or out_of_time:
            save("last.pt")
        if out_of_time:
            print(f"stopped after {tc.max_minutes} minutes; --resume continues", file=sys.stderr)
            break
    bar.close()
    if dev is None:
        save("best.pt")
    return out_dir / "best.pt"
