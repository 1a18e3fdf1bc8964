"""The epoch loop both trainers share, driven without a model: which batches it hands out, when
epochs and the run end, when it validates and checkpoints, and how it resumes."""

from collections.abc import Collection
from typing import cast

import pytest
import torch

from speechseq.config import TrainingConfig
from speechseq.data import DurationBatchSampler
from speechseq.errors import SpeechseqError
from speechseq.training import EpochLoop


class _Sampler:
    """``sizes[e]`` batches in epoch ``e`` (the last size repeats); a batch is ``(epoch, i)``."""

    def __init__(self, *sizes: int) -> None:
        self.sizes, self.epoch, self.start = sizes, 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def batches(self) -> list[tuple[int, int]]:
        n = self.sizes[min(self.epoch, len(self.sizes) - 1)]
        return [(self.epoch, i) for i in range(n)]

    def __len__(self) -> int:
        return len(self.batches()) - self.start


def _run(loop: EpochLoop, skip: Collection[tuple[int, int]] = frozenset()) -> tuple[list, list]:
    """Step through every batch (but those in ``skip``); returns the batches seen and, per
    epoch's end, (step, epoch, batch_in_epoch, validation_due)."""
    seen, ends = [], []
    for batches in loop.epochs():
        for batch in batches:
            seen.append(batch)
            if batch in skip:
                loop.skipped()
            else:
                loop.stepped(loss="0.0")
        ends.append((loop.step, loop.epoch, loop.batch_in_epoch, loop.validation_due))
    return seen, ends


def _make(sampler: _Sampler, saves: list | None = None, total_steps: int = 10**9, **train):
    """A loop over ``sampler`` whose ``last.pt`` saves append the step to ``saves``."""
    saves = [] if saves is None else saves
    tc = TrainingConfig(**{"checkpoint_every": 0, **train})
    loop = EpochLoop(
        tc,
        cast(DurationBatchSampler, sampler),  # a stand-in with what EpochLoop uses of one
        lambda seed: sampler.batches()[sampler.start :],
        total_steps,
        lambda: saves.append(loop.step),  # called once the loop exists
        progress=False,
    )
    return loop


def test_whole_epochs_each_end_once_even_when_shorter_than_the_first():
    sampler = _Sampler(4, 3)
    loop = _make(sampler, epochs=3)
    seen, ends = _run(loop)
    assert len(seen) == 4 + 3 + 3
    assert ends == [(4, 1, 0, True), (7, 2, 0, True), (10, 3, 0, True)]
    assert loop.epoch_number == 3  # the last validation belongs to the epoch just finished


def test_validation_every_other_epoch_and_at_the_end():
    sampler = _Sampler(2)
    _, ends = _run(_make(sampler, epochs=3, validate_every=2))
    assert [due for *_, due in ends] == [False, True, True]


def test_the_step_cap_stops_mid_epoch_and_a_resumed_loop_carries_on():
    sampler = _Sampler(5)
    saves: list[int] = []
    first = _make(sampler, saves, total_steps=7, epochs=2, checkpoint_every=3)
    seen, ends = _run(first)
    assert saves == [3, 6]
    # stopped on the cap two batches into epoch 2: that epoch is not over, the run is
    assert ends[-1] == (7, 1, 2, True)
    assert first.epoch_number == 2  # what metrics.jsonl calls the stop's validation

    again = _Sampler(5)
    resumed = _make(again, total_steps=10, epochs=2)
    resumed.resume(first.step, first.epoch, first.batch_in_epoch)
    rest, ends = _run(resumed)
    assert seen + rest == [(e, i) for e in range(2) for i in range(5)]
    assert ends == [(10, 2, 0, True)]


def test_a_run_of_whole_epochs_ends_on_the_cap_with_its_last_epoch_counted():
    sampler = _Sampler(3)
    _, ends = _run(_make(sampler, total_steps=6, epochs=2))
    assert ends[-1] == (6, 2, 0, True)


def test_skipped_batches_move_through_the_epoch_without_a_step():
    sampler = _Sampler(4)
    seen, ends = _run(_make(sampler, epochs=1), skip={(0, 1), (0, 2)})
    assert len(seen) == 4
    assert ends == [(2, 1, 0, True)]


def test_out_of_time_stops_after_the_first_step():
    sampler = _Sampler(4)
    loop = _make(sampler, epochs=3, max_minutes=0)
    seen, ends = _run(loop)
    assert loop.out_of_time
    assert seen == [(0, 0)]
    assert ends == [(1, 0, 1, True)]


def test_optimizer_state_for_other_parameters_is_refused_with_a_way_on(tmp_path):
    """A run begun by a version whose model had other parameters (e.g. conv biases) cannot
    be resumed; the error says how to start again from its weights."""

    def params(n):
        return [torch.nn.Parameter(torch.zeros(2)) for _ in range(n)]

    before, now = torch.optim.AdamW(params(3)), torch.optim.AdamW(params(2))
    scheduler = torch.optim.lr_scheduler.LambdaLR(now, lambda step: 1.0)
    saved = {
        "optimizer": before.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": 1,
        "epoch": 0,
        "batch_in_epoch": 1,
    }
    loop = _make(_Sampler(2), epochs=1)
    with pytest.raises(SpeechseqError, match="train.init_from="):
        loop.restore(saved, now, scheduler, tmp_path)


def test_compute_time_carries_over_a_resume_and_max_minutes_does_not(tmp_path):
    """``last.pt`` keeps the run's compute so far; a resumed loop counts on from it, while its
    own ``elapsed`` (what ``max_minutes`` stops on) starts again from nothing."""
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([param])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    first = _make(_Sampler(3), epochs=2, max_minutes=0)
    _run(first)
    first.started -= 90.0  # as if the stretch had taken a minute and a half
    saved = first.state(optimizer, scheduler)
    assert 90.0 <= saved["compute_seconds"] < 95.0

    resumed = _make(_Sampler(3), epochs=2, max_minutes=1)  # under the 90 s carried over
    resumed.restore(saved, optimizer, scheduler, tmp_path)
    assert resumed.elapsed() < 5.0
    assert saved["compute_seconds"] <= resumed.compute() < saved["compute_seconds"] + 5.0
    _run(resumed)
    assert resumed.step == 6 and not resumed.out_of_time

    # a checkpoint written before compute was kept resumes counting from this stretch alone
    del saved["compute_seconds"]
    older = _make(_Sampler(3), epochs=2)
    older.restore(saved, optimizer, scheduler, tmp_path)
    assert older.compute() < 5.0
