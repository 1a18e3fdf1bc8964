"""The optimizer both training loops use: AdamW with a linear warm-up and a cosine decay, one
optimizer step with gradient clipping, and a schedule that follows the config on resume.

Example:
    >>> optimizer, scheduler, total_steps = make_optimization(model, config.train, sampler)
    >>> grad_norm = optimizer_step(loss, optimizer, scheduler, scaler, model.parameters(), 5.0)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable

import torch

from speechseq import distributed
from speechseq.config import TrainingConfig
from speechseq.data import DurationBatchSampler

__all__ = [
    "WarmupCosine",
    "make_optimization",
    "make_optimizer",
    "optimizer_step",
    "restore_scheduler",
]


class WarmupCosine:
    """Linear warm-up to 1, then cosine decay to ``final_ratio`` at ``total_steps``."""

    def __init__(self, warmup_steps: int, total_steps: int, final_ratio: float) -> None:
        self.warmup_steps = max(0, warmup_steps)
        self.total_steps = max(total_steps, self.warmup_steps + 1)
        self.final_ratio = final_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.final_ratio + (1 - self.final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def restore_scheduler(scheduler: torch.optim.lr_scheduler.LambdaLR, state: dict) -> None:
    """Load a saved LambdaLR state but keep the schedule the config asks for now.

    ``LambdaLR`` saves a callable object's attributes, so a plain ``load_state_dict`` would
    bring back the old run's ``total_steps``. A resumed run with ``train.epochs`` changed (to
    end a run early, or to extend it) should follow the new length from the current step on.
    """
    wanted = dict(scheduler.lr_lambdas[0].__dict__)
    scheduler.load_state_dict(state)
    saved = scheduler.lr_lambdas[0].__dict__
    if saved != wanted and distributed.is_main():
        print(f"learning-rate schedule changed on resume: {saved} -> {wanted}", file=sys.stderr)
    saved.clear()
    saved.update(wanted)


def make_optimizer(
    model: torch.nn.Module, tc: TrainingConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with ``tc``'s learning rate, warmed up and cosine-decayed over ``total_steps``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(tc.warmup_steps, total_steps, tc.final_lr_ratio)
    )
    return optimizer, scheduler


def make_optimization(
    model: torch.nn.Module, tc: TrainingConfig, sampler: DurationBatchSampler
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, int]:
    """The optimizer and schedule of a run over ``sampler``'s batches, and its step cap
    (``train.max_steps``, else ``train.epochs`` passes)."""
    total_steps = tc.max_steps or tc.epochs * len(sampler.batches())
    optimizer, scheduler = make_optimizer(model, tc, total_steps)
    return optimizer, scheduler, total_steps


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    parameters: Iterable[torch.Tensor],
    grad_clip: float,
) -> torch.Tensor:
    """Back-propagate ``loss``, clip the gradients' norm, step the optimizer and the schedule.

    Returns:
        the gradients' norm before clipping (a 0-d tensor).
    """
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return grad_norm
