"""What the speech-to-text and text-to-speech training loops share.

The two loops (:mod:`speechseq.asr.train`, :mod:`speechseq.tts.train`) differ in their models,
losses and validation; the rest is here, once: the run folder, the metrics log, the optimizer and
its warm-up/cosine schedule, one optimizer step, and :class:`EpochLoop`, which walks whole epochs
of batches and knows when an epoch, and the run, ends.

Example:
    >>> loop = EpochLoop(config.train, sampler, make_loader, total_steps, save_last)
    >>> for batches in loop.epochs():
    ...     for batch in batches:
    ...         loss = loss_of(batch)
    ...         optimizer_step(loss, optimizer, scheduler, scaler, params, clip)
    ...         loop.stepped(loss=f"{loss.item():.3f}")
    ...     if loop.validation_due:
    ...         validate()
    ...     save_last()
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from speechseq import distributed
from speechseq.checkpoint import load_checkpoint, save_checkpoint
from speechseq.config import TrainingConfig
from speechseq.data import DurationBatchSampler, read_manifest
from speechseq.errors import SpeechseqError
from speechseq.files import TEMP_GLOB, write_text_atomic
from speechseq.optim import restore_scheduler

__all__ = [
    "Checkpointer",
    "EpochLoop",
    "feature_stats",
    "load_set",
    "make_loader",
    "make_sampler",
    "pick_device",
    "prepare_out_dir",
]


def make_loader(
    dataset: Dataset,
    sampler: DurationBatchSampler,
    collate: Callable,
    workers: int,
    seed: int,
) -> DataLoader:
    """A loader over ``sampler``'s batches of ``dataset``. Its own seeded generator keeps
    DataLoader's per-iterator seed draw off the global RNG, so a resumed run's dropout and
    augmentation streams match an uninterrupted run's."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
    )


def make_sampler(
    durations: list[float],
    data: Any,
    seed: int,
    shuffle: bool = True,
    world_size: int = 1,
    rank: int = 0,
) -> DurationBatchSampler:
    """Batches of similar durations, at most ``data.max_batch_seconds`` of padded audio each
    (``data``: a task's data section). Training batches (``shuffle``) are also capped at
    ``data.max_batch_size`` utterances and drawn in a seeded order; dev batches keep theirs."""
    return DurationBatchSampler(
        durations,
        data.max_batch_seconds,
        shuffle,
        seed if shuffle else 0,
        data.max_batch_size if shuffle else None,
        world_size,
        rank,
    )


def feature_stats(features: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Corpus mean and standard deviation per channel, (C,) each, of (T, C) feature matrices
    (accumulated in float64, returned as float32).

    Raises:
        SpeechseqError: no frames at all.
    """
    total, total_sq, frames = 0.0, 0.0, 0
    for feats in features:
        feats = feats.double()  # (T, C)
        total, total_sq = total + feats.sum(0), total_sq + feats.square().sum(0)
        frames += feats.shape[0]
    if frames == 0:
        raise SpeechseqError("no readable training audio to compute feature statistics from")
    # frames > 0: the loop ran, so the sums are tensors
    assert isinstance(total, torch.Tensor) and isinstance(total_sq, torch.Tensor)
    mean = total / frames
    std = (total_sq / frames - mean.square()).clamp(min=1e-8).sqrt()
    return mean.float(), std.float()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_set(
    paths: str | tuple[str, ...] | None,
    max_duration: float | None = None,
    max_missing: float = 0.0,
) -> list:
    """The utterances of one manifest or several (joined), less empty and over-long ones, and
    less those whose audio file is missing, which one warning line counts.

    Args:
        max_missing: the share of utterances whose audio may be missing (0.05: 5 %).

    Raises:
        SpeechseqError: more audio is missing than ``max_missing`` allows, or all of it.
    """
    if not paths:
        return []
    names = [paths] if isinstance(paths, str) else list(paths)
    utts = [u for path in names for u in read_manifest(path)]
    if max_duration is not None:
        utts = [u for u in utts if u.duration <= max_duration]
    utts = [u for u in utts if u.text.strip()]
    missing = [u.audio for u in utts if not Path(u.audio).is_file()]
    if not missing:
        return utts
    where = ", ".join(names)
    shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
    counted = f"{len(missing)} of {len(utts)} audio files are missing ({shown})"
    if len(missing) == len(utts) or len(missing) > max_missing * len(utts):
        raise SpeechseqError(
            f"{where}: {counted}; more than data.max_missing={max_missing:g} allows"
            if len(missing) < len(utts)
            else f"{where}: {counted}; nothing to train on"
        )
    if distributed.is_main():
        print(f"warning: {where}: {counted}; training without them", file=sys.stderr)
    gone = set(missing)
    return [u for u in utts if u.audio not in gone]


def prepare_out_dir(config, resume: bool, fmt: str) -> tuple[Path, dict | None]:
    """Refuse an occupied folder unless resuming; load its ``last.pt`` (of format ``fmt``) when
    resuming; on rank 0, set an orphaned metrics log aside and write ``config.yaml``.

    Args:
        config: an experiment config (``train.out_dir``, ``to_dict()``).
    """
    out_dir = Path(config.train.out_dir)
    last = out_dir / "last.pt"
    if last.exists() and not resume:
        raise SpeechseqError(
            f"{out_dir}: holds a run already; pass --resume to continue it, "
            "or choose another train.out_dir"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(last, fmt) if (resume and last.exists()) else None  # every rank
    if not distributed.is_main():
        return out_dir, state
    for stale in out_dir.glob(TEMP_GLOB):  # checkpoints a killed run was writing
        stale.unlink(missing_ok=True)
    metrics = out_dir / "metrics.jsonl"
    if state is None and metrics.exists():
        # A fresh start in a folder whose run never checkpointed: keep the old log, start anew.
        metrics.rename(out_dir / f"metrics.{int(time.time())}.jsonl")
    elif state is not None and metrics.exists():
        _drop_rows_after(metrics, state["train_state"]["step"])
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return out_dir, state


def _drop_rows_after(metrics: Path, step: int) -> None:
    """Keep the metrics rows up to ``step``: the killed run logged steps past its last
    checkpoint, which the resumed run logs again."""
    lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) < len(lines):
        write_text_atomic(metrics, "".join(kept))


class EpochLoop:
    """Whole epochs of training batches: the run's position, and when an epoch or the run ends.

    The loop owns ``step``, ``epoch`` and ``batch_in_epoch`` (what ``last.pt`` saves for an exact
    resume), sets the sampler's order for each epoch, shows the progress bar, writes ``last.pt``
    every ``train.checkpoint_every`` steps, and stops at ``train.epochs``, at the step cap or
    after ``train.max_minutes``. The trainer runs the model: for every batch it calls
    :meth:`stepped` after an optimizer step, or :meth:`skipped` for an unusable batch, and it
    iterates each epoch's batches to the end (no ``break``), which closes the epoch.

    Args:
        tc: the run's training section.
        sampler: the training batches; ``set_epoch(epoch, start_batch)`` picks their order.
        make_loader: a loader over ``sampler`` for an epoch, given that epoch's seed.
        total_steps: the step cap.
        save_last: writes ``last.pt`` (on every rank under torchrun: it may gather).
        progress: show a progress bar (on rank 0 only).
        any_rank: ``flag -> bool``, true on every rank if it is on any, so that all ranks stop
            on the same step; the identity in a single process.
    """

    def __init__(
        self,
        tc: TrainingConfig,
        sampler: DurationBatchSampler,
        make_loader: Callable[[int], Iterable],
        total_steps: int,
        save_last: Callable[[], None],
        progress: bool = True,
        any_rank: Callable[[bool], bool] = bool,
    ) -> None:
        self.tc, self.sampler, self.make_loader = tc, sampler, make_loader
        self.total_steps, self.save_last, self.progress = total_steps, save_last, progress
        self.any_rank = any_rank
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.started = time.monotonic()
        self.compute_before = 0.0  # seconds the run's earlier stretches spent in their loops
        self.out_of_time = False
        self.validation_due = False  # after an epoch's batches: validate now?
        self._stop = False
        self._bar: tqdm | None = None

    def state(
        self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler
    ) -> dict:
        """What an exact resume needs of the optimisation: the optimizer and schedule states and
        the position (``last.pt``'s ``train_state`` adds the trainer's own entries)."""
        return {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "compute_seconds": self.compute(),
        }

    def restore(
        self,
        train_state: dict,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR,
        out_dir: Path,
    ) -> None:
        """Load what :meth:`state` saved (the schedule's length stays the config's: see
        :func:`restore_scheduler`) and say where the run of ``out_dir`` resumes."""
        try:
            optimizer.load_state_dict(train_state["optimizer"])
        except ValueError as mismatch:  # torch's check: other parameter groups or counts
            # e.g. a run begun before the recognizer's convolutions lost their biases
            last = out_dir / "last.pt"
            raise SpeechseqError(
                f"{last}: its optimizer state is for other parameters than this version's model "
                "has, so the run cannot be resumed; start a new run in another train.out_dir "
                f"(it can start from these weights with train.init_from={last})"
            ) from mismatch
        restore_scheduler(scheduler, train_state["scheduler"])
        self.resume(train_state["step"], train_state["epoch"], train_state["batch_in_epoch"])
        # absent from checkpoints written before it was kept: their earlier stretches are lost
        self.compute_before = train_state.get("compute_seconds", 0.0)
        if distributed.is_main():
            print(
                f"resuming {out_dir} at step {self.step} "
                f"(epoch {self.epoch + 1}, batch {self.batch_in_epoch})",
                file=sys.stderr,
            )

    def resume(self, step: int, epoch: int, batch_in_epoch: int) -> None:
        """Continue from a saved position."""
        self.step, self.epoch, self.batch_in_epoch = step, epoch, batch_in_epoch

    @property
    def epoch_number(self) -> int:
        """The 1-based epoch of the latest step, as ``metrics.jsonl`` labels its rows: mid-epoch
        the epoch under way (a validation at a ``max_minutes`` stop too), at an epoch's end the
        one just finished."""
        return self.epoch + (1 if self.batch_in_epoch else 0)

    def elapsed(self) -> float:
        """Seconds since the loop was made: this stretch of the run (``max_minutes`` counts it)."""
        return time.monotonic() - self.started

    def compute(self) -> float:
        """Seconds the whole run has spent in its loops, over every resume so far: the time
        ``last.pt`` was saved at for each earlier stretch, plus this stretch's :meth:`elapsed`."""
        return self.compute_before + self.elapsed()

    def clocks(self) -> dict[str, float]:
        """The two clocks every ``metrics.jsonl`` row carries, in seconds to a tenth."""
        return {"elapsed": round(self.elapsed(), 1), "compute": round(self.compute(), 1)}

    def epochs(self) -> Iterator[Iterator]:
        """Each epoch's batches, from the saved position on, until the run ends."""
        tc = self.tc
        while self.epoch < tc.epochs and self.step < self.total_steps and not self.out_of_time:
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
            yield self._batches(self.make_loader(tc.seed + self.epoch))

    def stepped(self, **postfix: str) -> None:
        """Count an optimizer step (``postfix`` goes on the progress bar); save ``last.pt`` when
        due; decide whether the run stops here."""
        self.step += 1
        self.batch_in_epoch += 1
        if self._bar is not None:
            self._bar.set_postfix(postfix)
        tc = self.tc
        if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
            self.save_last()
        if self.step >= self.total_steps:
            self._stop = True
        elif tc.max_minutes is not None and self.any_rank(self.elapsed() > 60 * tc.max_minutes):
            self.out_of_time = self._stop = True

    def skipped(self) -> None:
        """Pass over a batch without a step (every file in it was unreadable)."""
        self.batch_in_epoch += 1

    def _batches(self, loader: Iterable) -> Iterator:
        tc = self.tc
        epoch_batches = self.batch_in_epoch + len(self.sampler)  # varies a little by epoch
        self._stop = False
        self._bar = tqdm(
            loader,
            total=epoch_batches,
            initial=self.batch_in_epoch,
            desc=f"epoch {self.epoch + 1}/{tc.epochs}",
            disable=not self.progress or not distributed.is_main(),
            file=sys.stderr,
            dynamic_ncols=True,
        )
        for batch in self._bar:
            yield batch
            if self._stop:
                break
        self._bar.close()
        self._bar = None
        # The loader ran dry: the epoch is over. Not "batch_in_epoch reached the first epoch's
        # count": the sampler's jitter changes the count per epoch, and an epoch one batch
        # short of it then never ended (the loop re-ran its empty remainder forever).
        # (or the run stopped on its last batch: a run of N whole epochs ends on the step cap)
        finished = not self._stop or self.batch_in_epoch >= epoch_batches
        if finished:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        run_ended = self.step >= self.total_steps or self.out_of_time or self.epoch >= tc.epochs
        self.validation_due = run_ended or (finished and self.epoch % tc.validate_every == 0)


class Checkpointer:
    """Writes a run's ``last.pt`` (with everything an exact resume needs) and ``best.pt``
    (the model at its best validation score), on rank 0.

    Args:
        out_dir: the run folder.
        model_part: the checkpoint's model part now (``asr_state`` / ``tts_state``).
        loop: the run's epoch loop (its position goes into ``last.pt``).
        optimizer, scheduler: saved in ``last.pt``.
        config: the experiment (saved in ``last.pt``).
        best_metric: the validation metric ``best.pt`` is chosen by, lower being better;
            validations without it leave ``best.pt`` alone.
        yardstick: how that metric is measured, if it can change between resumes (e.g. the
            recognizer that gives a CER); a resumed run measured otherwise starts its best over.
        have_dev: whether the run validates at all; without a dev set ``best.pt`` is the
            latest model.
    """

    def __init__(
        self,
        out_dir: Path,
        model_part: Callable[[], dict],
        loop: EpochLoop,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR,
        config: Any,
        best_metric: str,
        yardstick: str | None = None,
        have_dev: bool = True,
    ) -> None:
        self.out_dir, self.model_part, self.loop = out_dir, model_part, loop
        self.optimizer, self.scheduler, self.config = optimizer, scheduler, config
        self.best_metric, self.yardstick = best_metric, yardstick or best_metric
        self.have_dev = have_dev
        self.best = math.inf

    def save(self, name: str, meta: dict | None = None) -> None:
        """Write ``name`` (``last.pt`` adds the training state). Under torchrun every rank must
        call it for ``last.pt``: it gathers the ranks' random states."""
        world = distributed.world_size()
        rank_rngs = (
            distributed.all_gather_object(torch.get_rng_state()) if name == "last.pt" else []
        )
        if not distributed.is_main():
            return
        ckpt = self.model_part()
        if name == "last.pt":
            ckpt["train_state"] = {
                **self.loop.state(self.optimizer, self.scheduler),
                "best": self.best,
                "best_metric": self.yardstick,
                "rng": torch.get_rng_state(),
                "config": self.config.to_dict(),
            }
            if world > 1:
                ckpt["train_state"]["rank_rngs"] = rank_rngs
        ckpt["meta"] = {"step": self.loop.step, "epoch": self.loop.epoch, **(meta or {})}
        save_checkpoint(ckpt, self.out_dir / name)

    def save_last(self) -> None:
        self.save("last.pt")

    def restore(self, train_state: dict) -> None:
        """Resume from a ``last.pt``'s training state: the loop's position, the optimizer and
        schedule, the best score so far and this rank's random state."""
        ts = train_state
        self.best = ts.get("best", ts.get("best_wer", math.inf))  # best_wer: older runs
        saved_by = ts.get("best_metric", self.yardstick)
        if saved_by != self.yardstick:  # another yardstick's score is no score: start over
            if distributed.is_main():
                print(
                    f"best.pt was chosen by {saved_by}, now by {self.yardstick}: the next "
                    "validation replaces it",
                    file=sys.stderr,
                )
            self.best = math.inf
        self.loop.restore(ts, self.optimizer, self.scheduler, self.out_dir)
        rank_rngs = ts.get("rank_rngs") or [ts["rng"]]  # one per rank after a torchrun
        torch.set_rng_state(rank_rngs[distributed.rank() % len(rank_rngs)])

    def end_epoch(self, metrics: dict) -> None:
        """After an epoch (and its validation, if one was due): ``best.pt`` if the score
        improved (or the run has no dev set), then ``last.pt``."""
        score = metrics.get(self.best_metric)
        if score is not None and score <= self.best:
            self.best = score
            self.save("best.pt", {k: v for k, v in metrics.items() if isinstance(v, float)})
        elif not self.have_dev:
            self.save("best.pt")
        self.save("last.pt")
