"""Choose the no-speech threshold on dev, then show what it does to the test sets.

    python local/no_speech.py default data/dev.jsonl --test data/test_seen.jsonl \
        data/test_heldout.jsonl

Tuning looks only at dev: the no-speech score (``speechseq.asr.alignment.no_speech_score``) of
every dev utterance, clean and with white noise added at 20, 10 and 5 dB SNR, and of 20-second
noise clips (white, pink and brown noise at three levels, and music-like tones) made from seed 0.
The threshold printed is midway between the highest speech score and the lowest noise score (the
tones score low, as the recognizer is sure they hold no words, and give none: they are shown only).

``--write JSON`` stores the tuned threshold as ``no_speech_threshold`` in the model's decoding
JSON (made, with greedy decoding, if missing), where ``Transcriber.from_pretrained`` and
``speechseq transcribe`` read it.

With ``--test``, each test manifest is then evaluated with the threshold in force and with it off
(1.0), printing both WERs, and noise clips made from another seed (1) are transcribed to count the
words they give. ``--threshold`` evaluates a given threshold instead of the tuned one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechseq.asr.alignment import no_speech_score
from speechseq.asr.evaluation import evaluate
from speechseq.asr.transcriber import Transcriber
from speechseq.audio import load_audio
from speechseq.data import read_manifest

RATE = 16000
CLIP_SECONDS = 20.0


def get_parser() -> argparse.ArgumentParser:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="recognizer checkpoint, or 'default'")
    parser.add_argument("dev", help="dev manifest (JSONL)")
    parser.add_argument("--test", nargs="*", default=[], help="test manifests to report on")
    parser.add_argument("--threshold", type=float, help="report this threshold, not the tuned")
    parser.add_argument("--write", type=Path, help="decoding JSON to store the threshold in")
    return parser


def noise_clips(seed: int) -> dict[str, torch.Tensor]:
    """White, pink and brown noise at peaks of about 0.05, 0.2 and 0.8, and music-like tones."""
    rng = np.random.default_rng(seed)
    n = round(CLIP_SECONDS * RATE)
    clips = {}
    for level in (0.05, 0.2, 0.8):
        white = rng.standard_normal(n)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
        brown = np.fft.irfft(spectrum / freqs, n)
        for name, x in (("white", white), ("pink", pink), ("brown", brown)):
            clips[f"{name}@{level}"] = torch.from_numpy(level * x / np.abs(x).max()).float()
    t = np.arange(round(0.4 * RATE)) / RATE
    notes = []
    for _ in range(round(CLIP_SECONDS / 0.4)):
        f = rng.choice([261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3])
        harmonics = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3, 4))
        notes.append(np.minimum(1, 40 * t) * np.exp(-3 * t) * harmonics)
    clips["tones"] = torch.from_numpy(0.2 * np.concatenate(notes)).float()
    return clips


def scores(transcriber: Transcriber, waveforms: list[torch.Tensor]) -> list[float]:
    return [no_speech_score(lp) for w in waveforms for lp in transcriber.log_probs([w])]


def with_noise(waveform: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(waveform.shape, generator=generator)
    return waveform + noise * waveform.square().mean().sqrt() * 10 ** (-snr_db / 20)


def summary(values: list[float]) -> str:
    v = np.array(values)
    return f"min {v.min():.3f}  median {np.median(v):.3f}  max {v.max():.3f}"


def tune(transcriber: Transcriber, dev: str) -> float:
    audio = [load_audio(u.audio, RATE) for u in read_manifest(dev)]
    generator = torch.Generator().manual_seed(0)
    speech_max, noise_min = 0.0, 1.0
    print(f"{'dev set':<22} no-speech score")
    for snr in (None, 20, 10, 5):
        noisy = audio if snr is None else [with_noise(w, snr, generator) for w in audio]
        values = scores(transcriber, noisy)
        speech_max = max(speech_max, *values)
        name = "speech" if snr is None else f"speech + white {snr} dB"
        print(f"{name:<22} {summary(values)}")
    for name, clip in noise_clips(seed=0).items():
        (value,) = scores(transcriber, [clip])
        if name != "tones":  # the recognizer is sure these are no words: nothing to drop
            noise_min = min(noise_min, value)
        print(f"{name:<22} {value:.3f}")
    if noise_min <= speech_max:
        raise SystemExit(f"no gap: speech up to {speech_max:.3f}, noise from {noise_min:.3f}")
    threshold = round((speech_max + noise_min) / 2, 2)
    print(f"threshold {threshold} (speech up to {speech_max:.3f}, noise from {noise_min:.3f})")
    return threshold


def report(transcriber: Transcriber, manifest: str, threshold: float) -> None:
    utterances = read_manifest(manifest)
    wers = []
    for value in (1.0, threshold):
        transcriber.no_speech_threshold = value
        wers.append(100 * evaluate(transcriber, utterances).wer)
    change = wers[1] - wers[0]
    print(f"{manifest}: WER {wers[0]:.2f} % without, {wers[1]:.2f} % with ({change:+.2f})")


def main() -> None:
    args = get_parser().parse_args()
    torch.manual_seed(0)
    transcriber = Transcriber.from_pretrained(args.model)
    threshold = tune(transcriber, args.dev) if args.threshold is None else args.threshold
    if args.write is not None:
        saved: dict = {"kind": "greedy"}
        if args.write.exists():
            saved = json.loads(args.write.read_text())
        saved["no_speech_threshold"] = threshold
        saved["no_speech_tuned_on"] = f"{args.dev} and noise clips (local/no_speech.py)"
        args.write.write_text(json.dumps(saved, indent=2) + "\n")
    for manifest in args.test:
        report(transcriber, manifest, threshold)
    if args.test:
        noise_words(transcriber, threshold)


def noise_words(transcriber: Transcriber, threshold: float) -> None:
    """Transcribe the seed-1 noise clips as files, with the threshold off and on."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, clip in noise_clips(seed=1).items():
            paths.append(Path(folder) / f"{name}.wav")
            sf.write(paths[-1], clip.numpy(), RATE)
        for value in (1.0, threshold):
            transcriber.no_speech_threshold = value
            words = sum(len(r.text.split()) for r in transcriber.transcribe(paths))
            print(f"{len(paths)} test noise clips, threshold {value}: {words} words")


if __name__ == "__main__":
    main()
