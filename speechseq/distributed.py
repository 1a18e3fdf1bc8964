"""Multi-process runs with ``torch.distributed``, launched by ``torchrun``: joining the process
group, who is who, a few collectives that are no-ops in a single process, the deterministic split
of a list across ranks, and batch norm over the whole global batch.

Nothing here does anything unless torchrun (or another launcher) set ``WORLD_SIZE`` > 1, so a
plain ``speechseq train asr`` runs exactly the code it always did.

Example (what ``train_asr`` does):
    >>> device = distributed.init(torch.device("cpu"))   # gloo on CPU, nccl on CUDA
    >>> my_files = distributed.shard(files, distributed.rank(), distributed.world_size())
    >>> if distributed.is_main():
    ...     save_checkpoint(state, "last.pt")
    >>> distributed.cleanup()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "SyncBatchNorm2d",
    "all_gather_object",
    "barrier",
    "cleanup",
    "convert_sync_batchnorm",
    "gather",
    "init",
    "is_main",
    "launched",
    "rank",
    "shard",
    "sum_over_ranks",
    "world_size",
]

T = TypeVar("T")

_owned = False  # whether init() created the process group (and cleanup() may destroy it)


def launched() -> bool:
    """Whether a launcher (torchrun) started this process as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(
    device: torch.device, timeout: timedelta | None = None, backend: str | None = None
) -> torch.device:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, …)
    when ``WORLD_SIZE`` > 1; do nothing otherwise or if a group exists already.

    Args:
        device: where this process computes.
        timeout: how long a collective may wait for the other ranks (default: torch's).
        backend: default nccl for CUDA, gloo for anything else.

    Returns:
        this rank's device: ``cuda:LOCAL_RANK`` for CUDA under torchrun, else ``device``.
    """
    global _owned
    if not launched():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend, timeout=timeout)
        _owned = True
    return device


def cleanup() -> None:
    """Leave the process group if :func:`init` created it."""
    global _owned
    if _owned and dist.is_initialized():
        dist.destroy_process_group()
    _owned = False


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (torchrun's ``RANK`` before :func:`init`; 0 in a single process)."""
    return dist.get_rank() if _active() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Processes in the run (torchrun's ``WORLD_SIZE`` before :func:`init`; 1 alone)."""
    return dist.get_world_size() if _active() else int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Rank 0: the process that writes checkpoints, logs and progress bars."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if _active():
        dist.barrier()


def gather(values: Sequence[float]) -> torch.Tensor:
    """Every rank's ``values``: (world_size, len(values)) float64, row ``r`` from rank ``r``."""
    mine = torch.tensor([list(values)], dtype=torch.float64)  # (1, K)
    if not _active():
        return mine
    if dist.get_backend() == "nccl":
        mine = mine.cuda()
    rows = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(rows, mine)
    return torch.cat(rows).cpu()  # (world_size, K)


def sum_over_ranks(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (``values`` unchanged in a single process)."""
    if not _active():
        return list(values)
    return gather(values).sum(0).tolist()


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in a single process."""
    if not _active():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Part ``index`` of ``count``: items ``index``, ``index + count``, … .

    Every rank (or array task) computes the same split from the same list, so no coordination is
    needed; striding keeps each part's mix like the whole's (a duration-sorted batch gives each
    rank utterances of similar lengths). A part may be empty when ``len(items) < count``.
    """
    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    return list(items[index::count])


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks that gradients flow through: the gradient of a sum shared by every rank
    is the sum of the ranks' gradients. (``torch.distributed.nn.functional.all_reduce`` does
    the same, but warns it is deprecated in favour of a function in a private module.)"""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover every rank's share of the batch, so N ranks
    normalise as one process would over the whole batch.

    ``torch.nn.SyncBatchNorm`` refuses CPU tensors; this sums per-channel moments over the ranks
    with a differentiable all-reduce (whose backward all-reduces the gradients, as
    SyncBatchNorm's does) and works on gloo and nccl alike. In eval mode, or in a single
    process, it is plain BatchNorm2d; its state dict is BatchNorm2d's.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, C, H, W); B may differ between ranks."""
        if not (self.training and _active()):
            return super().forward(x)
        channels, shape = x.shape[1], (1, x.shape[1], 1, 1)
        x64 = x.double()  # E[x²] - E[x]² over a whole batch needs float64 to stay exact enough
        count = x64.new_full((1,), x.numel() / channels)
        moments = torch.cat([x64.sum((0, 2, 3)), x64.square().sum((0, 2, 3)), count])  # (2C+1,)
        moments = _AllReduceSum.apply(moments)  # summed over ranks
        n = moments[-1]
        mean = moments[:channels] / n  # (C,)
        var = moments[channels:-1] / n - mean.square()  # (C,) biased, as batch norm divides
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * n / (n - 1).clamp(min=1))
        dtype = torch.promote_types(x.dtype, torch.float32)  # as F.batch_norm under autocast
        invstd = torch.rsqrt(var + self.eps).to(dtype)
        y = (x.to(dtype) - mean.to(dtype).view(shape)) * invstd.view(shape)  # (B, C, H, W)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        # called only with track_running_stats, which registers these buffers
        assert self.num_batches_tracked is not None
        assert self.running_mean is not None and self.running_var is not None
        self.num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # cumulative moving average, as nn.BatchNorm2d
            momentum = 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - momentum).add_(mean.to(self.running_mean.dtype), alpha=momentum)
        self.running_var.mul_(1 - momentum).add_(
            unbiased_var.to(self.running_var.dtype), alpha=momentum
        )


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every ``nn.BatchNorm2d`` in ``module`` (in place) for :class:`SyncBatchNorm2d`,
    keeping its parameters and buffers; call it before moving the module to its device.

    Returns:
        ``module``.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = SyncBatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            sync.load_state_dict(child.state_dict())
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module
