"""Folder jobs: where each transcript goes, what a re-run skips, and the run report.

A job is meant to be killed and re-run: each transcript file is written atomically (temporary file
+ rename) as soon as its input is done, and a re-run skips every input whose transcripts all
exist, so nothing finished is redone or lost. Inputs that failed have no transcript and are tried
again. Jobs running at once on the same output folder share the work: each input is claimed with
a lock file just before it is read (:mod:`speechseq.asr.claims`). The report gains one JSON line
per input per run, failures and skips included:

    {"run": "2025-01-31T09:12:03.081", "input": "talks/a.wav", "status": "ok",
     "duration": 3602.4, "seconds": 21.7, "error": null}

``status`` is ``ok``, ``failed`` or ``skipped`` (with ``"note": "another job has it"`` when a
concurrent job holds or finished it); ``duration`` is seconds of audio; ``seconds`` the
processing time spent on the input (see :attr:`TranscriptionResult.seconds`).

A big job splits into parts that run anywhere at once (torchrun ranks, SLURM array tasks):
``plan_job(…, shard=(k, n))`` plans part ``k`` of ``n`` (:mod:`speechseq.asr.shards`).

Example:
    >>> plan = plan_job(["recordings/"], out_dir=Path("out"), formats=["srt", "json"])
    >>> summary = run_job(transcriber, plan, report=Path("out/report.jsonl"))
    >>> print(summary)
    198 succeeded, 2 failed, 0 skipped
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from speechseq.asr.claims import LOCK_FAILED, InputClaims, lock_path
from speechseq.asr.result import TranscriptionResult
from speechseq.asr.shards import balanced_part
from speechseq.asr.sources import AudioSlice, audio_source
from speechseq.asr.writers import FORMATS, SubtitleOptions, render
from speechseq.audio import AUDIO_SUFFIXES
from speechseq.data.manifest import is_kaldi_dir, read_manifest
from speechseq.errors import SpeechseqError, os_cause
from speechseq.files import write_text_atomic

if TYPE_CHECKING:  # torch-free at import: asr.lite runs jobs without loading torch
    from speechseq.asr.lite import LiteTranscriber
    from speechseq.asr.transcriber import Transcriber

__all__ = [
    "JobFile",
    "JobPlan",
    "JobSummary",
    "RunReport",
    "check_writable",
    "expand_inputs",
    "flat_malloc",
    "plan_job",
    "run_job",
    "total_over_ranks",
]


MANIFEST_SUFFIXES = (".jsonl", ".json")
Input = Path | AudioSlice  # what a job transcribes: a file, or a segment of one


@dataclass(frozen=True)
class JobFile:
    """An input (a file, or a segment of one) and the transcript files it gets (none when
    transcripts are only printed)."""

    input: Input
    outputs: tuple[Path, ...] = ()


@dataclass
class JobPlan:
    """What a run will do.

    Attributes:
        todo: inputs to transcribe.
        skipped: inputs whose transcripts all exist.
        missing: inputs that named nothing (a missing file, an empty folder, a glob that matched
            nothing), as failed results.
        formats: the transcript formats, in the order of each :attr:`JobFile.outputs`.
        out_dir: where the transcripts go (None: they are only printed).
        overwrite: redo inputs whose transcripts exist.
        labels: what to call an input in results, errors and the report, where that is not
            its path (``{"/tmp/…/stdin": "-"}`` for audio read from standard input).
    """

    todo: list[JobFile] = field(default_factory=list)
    skipped: list[JobFile] = field(default_factory=list)
    missing: list[TranscriptionResult] = field(default_factory=list)
    formats: tuple[str, ...] = ("txt",)
    out_dir: Path | None = None
    overwrite: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class JobSummary:
    """Inputs by outcome; ``elsewhere``: left to a job running at once on the same folder."""

    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    elsewhere: int = 0

    def __str__(self) -> str:
        line = f"{self.succeeded} succeeded, {self.failed} failed, {self.skipped} skipped"
        return line + (f", {self.elsewhere} left to another job" if self.elsewhere else "")


def expand_inputs(inputs: Iterable[str | Path]) -> tuple[list[Input], list[TranscriptionResult]]:
    """Files stay, folders are walked recursively for audio suffixes, globs are expanded, and
    manifests (``.jsonl``/``.json``: ours or NeMo's; a Kaldi data directory) give their
    utterances: files, or segments of files (:class:`~speechseq.asr.segmentation.AudioSlice`).

    Returns:
        the audio found (sorted within each folder or glob, in manifest order, duplicates
        removed), and a failed result for each input that matched nothing.
    """
    files: list[Input] = []
    missing: list[TranscriptionResult] = []
    for item in inputs:
        item_str = str(item)
        path = Path(item_str)
        if is_kaldi_dir(path) or (path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES):
            try:
                utterances = read_manifest(path)
            except SpeechseqError as err:
                missing.append(TranscriptionResult(item_str, error=str(err)))
                continue
            if not utterances:
                missing.append(TranscriptionResult(item_str, error=f"{item_str}: no utterances"))
            for source in map(audio_source, utterances):
                files.append(Path(source) if isinstance(source, str) else source)
        elif path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not found:
                missing.append(TranscriptionResult(item_str, error=f"{item_str}: no audio files"))
            files += found
        elif path.exists():
            files.append(path)
        elif glob.has_magic(item_str):
            found = sorted(
                Path(p) for p in glob.glob(item_str, recursive=True) if Path(p).is_file()
            )
            if not found:
                missing.append(TranscriptionResult(item_str, error=f"{item_str}: matched no files"))
            files += found
        else:
            missing.append(TranscriptionResult(item_str, error=f"{item_str}: no such file"))
    seen: set = set()
    unique = []
    for f in files:
        key = f.resolve() if isinstance(f, Path) else (Path(f.path).resolve(), f.offset)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, missing


def _root(file: Path, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        if file.is_relative_to(folder):
            return folder
    return None


def plan_job(
    inputs: Iterable[str | Path],
    out_dir: Path | None = None,
    formats: Sequence[str] = ("txt",),
    overwrite: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> JobPlan:
    """Find the inputs and decide what to do with each.

    A file found in a folder input keeps its place below that folder under ``out_dir``
    (``DIR/a/b.wav`` → ``OUT/a/b.srt``); a file named directly goes to ``OUT/b.srt``. Files
    whose names differ only in their extension (``b.wav`` and ``b.flac`` side by side) keep it,
    so neither overwrites the other's transcript: ``OUT/a/b.wav.srt`` and ``OUT/a/b.flac.srt``.

    Args:
        inputs: files, folders (searched recursively) and globs.
        out_dir: where transcripts go; None to only print them (nothing is skipped).
        formats: some of :data:`speechseq.asr.writers.FORMATS`, or ``"all"``.
        overwrite: redo inputs whose transcripts exist.
        shard: ``(k, n)``: plan only part ``k`` of ``n`` of the files found, split by
            :func:`balanced_part` (part 0 also reports inputs that named nothing). The split
            depends only on the inputs, not on what is done, so every part of a re-run takes
            the same files.
    """
    inputs = [str(i) for i in inputs]
    expanded = (f for fmt in formats for f in (FORMATS if fmt == "all" else [fmt]))
    wanted = tuple(dict.fromkeys(expanded))  # in order, once each
    for fmt in wanted:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)} or all")
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise SpeechseqError(f"{out_dir}: exists and is not a folder; give another --output-dir")
    files, missing = expand_inputs(inputs)
    folders = [Path(i) for i in inputs if Path(i).is_dir()]
    names = _output_names(files, folders)  # over all files, so every shard names alike
    index, count = shard
    files = balanced_part(files, index, count)
    plan = JobPlan(
        missing=missing if index == 0 else [], formats=wanted, out_dir=out_dir, overwrite=overwrite
    )
    for file in files:
        if out_dir is None:
            plan.todo.append(JobFile(file))
            continue
        name = names[file]
        job = JobFile(file, tuple(out_dir / f"{name}.{fmt}" for fmt in wanted))
        done = not overwrite and all(out.exists() for out in job.outputs)
        (plan.skipped if done else plan.todo).append(job)
    return plan


def _output_names(files: Sequence[Input], folders: Sequence[Path]) -> dict[Input, str]:
    """Each input's output path below ``out_dir``, without the format's suffix (a segment's:
    its manifest id, or ``STEM@OFFSET``)."""
    relative = {}
    for file in files:
        if isinstance(file, AudioSlice):
            continue
        root = _root(file, folders)
        relative[file] = file.relative_to(root) if root is not None else Path(file.name)
    stems = Counter(str(rel.with_suffix("")) for rel in relative.values())
    names: dict[Input, str] = {
        file: str(rel) if stems[str(rel.with_suffix(""))] > 1 else str(rel.with_suffix(""))
        for file, rel in relative.items()
    }
    for file in files:
        if isinstance(file, AudioSlice):
            names[file] = file.stem
    seen: dict[str, Input] = {}
    for file, name in names.items():  # same name in two folders, both named directly
        if name in seen:
            raise SpeechseqError(
                f"{seen[name]} and {file} would write the same transcript ({name}.*); "
                "pass their common folder instead of the files"
            )
        seen[name] = file
    return names


class RunReport:
    """Appends one JSON line per input to a report file (see the module docstring).

    Args:
        path: the JSONL file; created with its folder if missing, appended to if not.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.run = datetime.now().isoformat(timespec="milliseconds")  # tells runs apart
        self._file: TextIO | None = None

    def __enter__(self) -> RunReport:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as err:
            cause = os_cause(err)
            blocking = next((p for p in self.path.parents if p.exists()), None)
            if blocking is not None and not blocking.is_dir():
                cause = f"{blocking} is a file, not a folder"
            raise SpeechseqError(f"{self.path}: cannot write the report ({cause})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()

    def add(
        self,
        input: str | Path,
        status: str,
        duration: float = 0.0,
        seconds: float = 0.0,
        error: str | None = None,
        truncated: bool = False,
        note: str | None = None,
    ) -> None:
        record = {
            "run": self.run,
            "input": str(input),
            "status": status,
            "duration": round(duration, 3),
            "seconds": round(seconds, 3),
            "error": error,
            **({"truncated": True} if truncated else {}),
            **({"note": note} if note else {}),
        }
        if self._file is None:
            raise RuntimeError("open the report first: with RunReport(path) as report: …")
        try:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()  # a killed job keeps every line written so far
        except OSError as err:
            raise SpeechseqError(
                f"{self.path}: cannot write the report ({os_cause(err)})"
            ) from None


def run_job(
    transcriber: Transcriber | LiteTranscriber,
    plan: JobPlan,
    report: Path | None = None,
    options: SubtitleOptions | None = None,
    num_workers: int = 0,
    on_result: Callable[[TranscriptionResult], None] | None = None,
) -> JobSummary:
    """Transcribe ``plan.todo``, write each input's transcripts as soon as it is done, and log
    every input (skipped and missing ones too) to ``report``.

    Args:
        transcriber: the recognizer.
        plan: from :func:`plan_job`.
        report: JSONL run report to append to (None: no report).
        options: subtitle layout for srt and vtt.
        num_workers: DataLoader worker processes reading audio.
        on_result: called with each result (missing inputs first) after its files are written.

    Returns:
        the counts for the summary line.
    """
    summary = JobSummary(skipped=len(plan.skipped))
    index = {str(job.input): i for i, job in enumerate(plan.todo)}
    claims = None
    if plan.out_dir is not None and plan.todo:
        check_writable(plan.out_dir)  # before any work, not at the first transcript
        locks = [(lock_path(job.outputs[0]), job.outputs) for job in plan.todo]
        claims = InputClaims(locks, plan.overwrite)
    with (
        RunReport(report) if report is not None else contextlib.nullcontext() as log,
        _releasing(claims),
    ):

        def handle(result: TranscriptionResult) -> None:
            i = index.get(result.path)
            if result.path in plan.labels:
                label = plan.labels[result.path]
                if result.error is not None:
                    result.error = result.error.replace(result.path, label)
                result.path = label
            cause = None
            if claims is not None and result.error and LOCK_FAILED in result.error:
                cause = result.error  # its lock could not be written: nor can its transcripts
            elif result.ok and i is not None:
                for fmt, path in zip(plan.formats, plan.todo[i].outputs, strict=False):
                    if not plan.overwrite and path.exists():
                        continue  # an earlier run stopped part-way through this input's files
                    try:
                        write_text_atomic(path, render(result, fmt, options))
                    except OSError as err:  # disk full, folder gone: later files fail too
                        cause = f"{path}: cannot write ({os_cause(err)})"
                        break
            if cause is not None:
                if log is not None:
                    with contextlib.suppress(SpeechseqError):
                        log.add(result.path, "failed", result.duration, 0.0, cause)
                # inputs that named nothing were counted as failed before any of todo
                done = summary.succeeded + summary.failed - len(plan.missing)
                left = len(plan.todo) - done
                raise SpeechseqError(
                    f"{cause}; the job stopped with {left} of {len(plan.todo)} inputs "
                    "not done: free the space or fix the folder, then run it again"
                )
            if claims is not None and i is not None:
                claims.release(i)
            if result.ok:
                summary.succeeded += 1
            else:
                summary.failed += 1
            if log is not None:
                status = "ok" if result.ok else "failed"
                log.add(
                    result.path,
                    status,
                    result.duration,
                    result.seconds,
                    result.error,
                    truncated=result.truncated is not None,
                )
            if on_result:
                on_result(result)

        for job in plan.skipped:
            if log is not None:
                log.add(str(job.input), "skipped")
        for result in plan.missing:
            handle(result)
        done: set[str] = set()
        paths = [job.input for job in plan.todo]
        claim = claims.claim if claims is not None else None
        for result in transcriber.iter_transcribe(paths, num_workers, claim=claim):
            done.add(result.path)
            handle(result)
        for path in index.keys() - done:  # claimed by another job: it does them
            summary.elsewhere += 1
            if log is not None:
                log.add(path, "skipped", note="another job has it")
    return summary


@contextlib.contextmanager
def _releasing(claims: InputClaims | None):
    """Remove the locks a job still holds when it stops, by error or interrupt too."""
    try:
        yield
    finally:
        if claims is not None:
            claims.release_all()


def check_writable(folder: Path) -> None:
    """Make ``folder`` if needed and write (then remove) a file in it.

    Raises:
        SpeechseqError: it cannot be made or written to (a file of that name: plan_job says
            so first).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / f".speechseq-probe-{os.getpid()}", "").unlink()
    except OSError as err:
        raise SpeechseqError(f"{folder}: cannot write there ({os_cause(err)})") from None


def total_over_ranks(summary: JobSummary) -> JobSummary:
    """Every rank's summary added up (each rank waits here for the others: torchrun stops all
    ranks when one exits non-zero), then the process group left; ``summary`` alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:  # not launched by torchrun: no torch
        return summary
    from speechseq import distributed

    if distributed.world_size() == 1:
        return summary
    counts = distributed.sum_over_ranks(
        [summary.succeeded, summary.failed, summary.skipped, summary.elsewhere]
    )
    distributed.cleanup()
    return JobSummary(*(int(c) for c in counts))


def flat_malloc() -> None:
    """Have glibc serve blocks over 128 KiB with mmap, so each batch's freed tensors go back to
    the system. Its default adaptive threshold lets the heap fragment: transcribing a 2-hour
    file, peak RSS crept from 690 MB to 980 MB with the file's length; with this it stays flat."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do
