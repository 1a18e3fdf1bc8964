"""Splitting a folder job into parts that run anywhere at once: torchrun ranks, SLURM array tasks.

Part ``k`` of ``n`` takes its share of the inputs, balanced by file size (:func:`balanced_part`,
``speechseq.asr.jobs.plan_job(…, shard=(k, n))``), writes its own transcripts into the shared
output tree and its own report (:func:`shard_report`). Under torchrun each rank takes its part of
a part (:func:`join_ranks`).

Example:
    >>> parse_shard("3/10")
    (3, 10)
    >>> shard_report(Path("out/report.jsonl"), 3, 10)
    PosixPath('out/report.shard3.jsonl')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from speechseq.errors import SpeechseqError

__all__ = ["balanced_part", "join_ranks", "parse_shard", "report_path", "shard_report"]


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/10"`` → ``(3, 10)``: part 3 (counted from 0) of 10.

    Raises:
        SpeechseqError: not ``K/N`` with 0 <= K < N.
    """
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SpeechseqError(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if not 0 <= index < count:
        raise SpeechseqError(f"--shard {text!r}: K must be 0 to N-1")
    return index, count


def shard_report(path: Path, index: int, count: int) -> Path:
    """The report of part ``index`` of ``count``: ``{shard}`` in the name replaced by the
    index, else ``.shard{index}`` before the suffix (``report.jsonl`` → ``report.shard3.jsonl``),
    so parts never append to one file; ``path`` itself for an unsplit job."""
    if "{shard}" in path.name:
        return path.with_name(path.name.replace("{shard}", str(index)))
    if count == 1:
        return path
    return path.with_name(f"{path.stem}.shard{index}{path.suffix}")


def balanced_part(files: Sequence[Any], index: int, count: int) -> list[Any]:
    """Part ``index`` of ``count`` of ``files``, the parts balanced by file size (a segment of
    a file, :class:`~speechseq.asr.segmentation.AudioSlice`, weighs as 16-bit 16 kHz audio of
    its duration).

    Largest file first, each goes to the part with the fewest bytes so far (the lowest index on
    a tie), so one hour-long recording does not leave its part running long after the others;
    each part keeps the files' order. Sizes stand in for durations (no file is opened), and the
    split depends only on the files, so every rank or array task computes the same one.
    """
    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    sizes = {}
    for file in files:
        duration = getattr(file, "duration", None)
        if duration is not None:
            sizes[file] = round(32000 * duration)
            continue
        try:
            sizes[file] = Path(file).stat().st_size
        except OSError:  # vanished: it fails later, with a message, in whichever part
            sizes[file] = 0
    loads = [0] * count
    mine = set()
    for file in sorted(files, key=lambda f: (-sizes[f], str(f))):
        part = min(range(count), key=lambda k: (loads[k], k))
        loads[part] += sizes[file] + 1  # + 1: empty files spread too
        if part == index:
            mine.add(file)
    return [f for f in files if f in mine]


def join_ranks(part: int, parts: int, device: str) -> tuple[int, int, str]:
    """Under torchrun, split part ``part`` of ``parts`` further among the ranks (rank r of w
    takes part ``part * w + r`` of ``parts * w``) and join the process group for the final
    tally; alone, change nothing (and load no torch).

    Returns:
        this process's part, the number of parts, and its device.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:  # not launched by torchrun
        return part, parts, device
    import torch

    from speechseq import distributed

    world = distributed.world_size()  # torchrun's; alone: 1
    if world == 1:
        return part, parts, device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # gloo only for the final tally; ranks finish far apart, so wait for as long as it takes
    joined = distributed.init(torch.device(device), timedelta(days=7), backend="gloo")
    return part * world + distributed.rank(), parts * world, str(joined)


def report_path(report: Path | None, out_dir: Path | None, part: int, parts: int) -> Path | None:
    """Where a job's report goes: ``report``, else ``OUT_DIR/report.jsonl`` when transcripts
    are written, else nowhere; one report per part (:func:`shard_report`)."""
    if report is None and out_dir is not None:
        report = out_dir / "report.jsonl"
    return None if report is None else shard_report(report, part, parts)
