"""Folder jobs at scale: `speechseq transcribe` over a folder of short, long and broken files.

    python benchmarks/batch.py --files 200 --long-minutes 60 --workdir /tmp/batch-bench \
        --manifest recipes/synthetic/asr/data/test_heldout.jsonl --json bench-batch.json

    # a quick look: 30 files, a 10-minute "long" one, one thread per process
    python benchmarks/batch.py --files 30 --long-minutes 10 --workdir /tmp/batch-small --threads 1

The folder (built once in WORKDIR/folder, reused while the options and sources stay the same)
holds only speech the repo has: ``data/samples/*.wav`` plus the audio of ``--manifest``. Its
``--files`` files lie in a few nested subfolders: single utterances copied as they are and
concatenations of several (seconds to tens of seconds), one 2-5 minute file per 50 files, one
file of ``--long-minutes`` minutes (utterances joined by short pauses, written one utterance at
a time), and ``--broken`` broken files (in turn: an empty ``.wav``, a text file named ``.wav``, a
wav cut inside its header). Then, one after another, never at the same time, each into a fresh
output folder:

- ``1 process``: ``speechseq transcribe FOLDER -o OUT --device cpu --threads T``;
- ``2 ranks``: the same under ``torchrun --standalone --nproc-per-node 2 -m speechseq``: rank r
  takes files r, r + 2, … of the sorted list and writes ``OUT/report.shard{r}.jsonl``;
- ``resume``: the 1-process job, killed (SIGKILL to its process group, DataLoader worker
  included) halfway through its work: once it has worked half as long as the 1-process run
  did (counted from the report being opened, so that start-up is left out); then run again to
  the end in the same output folder.

Wall time runs from the launch to the exit of the last process, start-up included; files/s
counts the files a run transcribed or failed (not those it skipped); × real time is the audio
seconds it transcribed / wall seconds. Peak RSS is the largest sum of resident memory over the
run's process tree, sampled from /proc every 100 ms (the CLI and its DataLoader worker; under
torchrun the agent and each rank with its worker); a forked worker's RSS counts the pages it
shares with its parent again, which peak PSS (shared pages split between their users) does not.

Checks, any failure of which makes the exit status 1: every good file has exactly one
transcript at its mirrored path and one ``ok`` line with the file's duration; every broken file
a ``failed`` line and no transcript; no temporary files left by a finished run; the 2-rank and
resumed transcripts equal the 1-process ones but for near-ties (at most 0.1 % of the words: a
file batched with other neighbours gets log-probs that differ in their last bits); the re-run
after the kill skips exactly the transcripts that were there and transcribes exactly the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechseq.audio import load_audio
from speechseq.checkpoint import load_checkpoint, precision
from speechseq.data.manifest import read_manifest
from speechseq.errors import SpeechseqError
from speechseq.pretrained import default_recognizer_path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
RATE = 16000
SEED = 20250131
RANKS = 2
FOLDER_VERSION = 2  # bump when the folder layout changes, so cached folders are rebuilt
SUBFOLDERS = ("", "day-01", "day-01/morning", "day-02", "day-02/afternoon/room-b", "talks")
BROKEN_KINDS = ("empty", "text", "header")
POLL_SECONDS = 0.1  # a /proc scan costs ~2 ms: ~2 % of a core taken from the runs measured


@dataclass(frozen=True)
class FolderFile:
    """One file of the benchmark folder: path below the folder, what it is, seconds of audio."""

    path: str
    kind: str  # short, medium, long or broken
    duration: float = 0.0

    @property
    def transcript(self) -> str:
        return str(Path(self.path).with_suffix(".txt"))


@dataclass
class Folder:
    root: Path
    files: list[FolderFile]
    build_seconds: float = 0.0
    reused: bool = False  # found built in the workdir

    @property
    def good(self) -> list[FolderFile]:
        return [f for f in self.files if f.kind != "broken"]

    @property
    def broken(self) -> list[FolderFile]:
        return [f for f in self.files if f.kind == "broken"]

    @property
    def audio_seconds(self) -> float:
        return sum(f.duration for f in self.files)


@dataclass
class Run:
    """One launch of the CLI (or of torchrun) and what it left behind."""

    name: str
    command: list[str]
    threads: int
    ranks: int = 1
    wall: float = 0.0
    returncode: int | None = None
    killed: bool = False
    lines: list[dict] = field(default_factory=list)  # this launch's report lines
    peak_rss_mb: float = 0.0  # whole process tree, sampled
    rank_peak_rss_mb: list[float] = field(default_factory=list)  # per rank subtree, sampled
    largest_process_mb: float = 0.0  # ru_maxrss over the tree (exact, one process)
    peak_pss_mb: float = 0.0  # whole process tree, shared pages split between processes
    python_path: str | None = None  # a speechseq source tree to run instead of this one
    started_at: float = 0.0  # time.time() at the launch
    startup: float | None = None  # launch → report opened (imports, model, folder scan)
    last_line: float | None = None  # launch → the last report line written

    def count(self, status: str) -> int:
        return sum(1 for line in self.lines if line["status"] == status)

    @property
    def audio_seconds(self) -> float:
        return sum(line["duration"] for line in self.lines if line["status"] == "ok")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Files/s, × real time and peak memory of `speechseq transcribe` over a "
        "folder of mixed files: 1 process, 2 torchrun ranks, and a killed-and-resumed job."
    )
    parser.add_argument(
        "--files", type=int, default=200, help="Files in the folder, long and broken included."
    )
    parser.add_argument(
        "--long-minutes", type=float, default=60.0, help="Length of the one long file (0: none)."
    )
    parser.add_argument("--broken", type=int, default=3, help="Broken files among --files.")
    parser.add_argument(
        "--manifest", type=Path, default=None, help="JSONL manifest whose audio joins the speech."
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("batch-bench"), help="Folder, outputs and logs."
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="Checkpoint (default: the shipped model)."
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="A second checkpoint (its NAME.decoding.json beside it) run first as one more "
        "1-process row, for the throughput ratio of --model over it in the same run.",
    )
    parser.add_argument(
        "--baseline-code",
        type=Path,
        default=None,
        help="A speechseq source tree (e.g. `git worktree add /tmp/before <commit>`) that the "
        "baseline row runs instead of this one (on PYTHONPATH): an earlier release, code and "
        "model together.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="Torch threads per process (default: the usable CPUs, split between the ranks).",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="The CLI's --workers (default: its own, 1)."
    )
    parser.add_argument(
        "--decoder",
        choices=["auto", "greedy", "beam"],
        default="auto",
        help="The CLI's --decoder (default auto: beam + LM for the shipped model).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Write every figure here.")
    parser.add_argument("--skip-resume", action="store_true", help="No kill-and-resume run.")
    parser.add_argument("--skip-ranks", action="store_true", help="No torchrun run.")
    return parser


# --- the folder ------------------------------------------------------------------------------


def speech_sources(manifest: Path | None) -> list[Path]:
    sources = sorted(SAMPLES.glob("*.wav"))
    if manifest is not None:
        sources += sorted({Path(u.audio) for u in read_manifest(manifest)})
    if not sources:
        raise SpeechseqError(f"no speech found: {SAMPLES} holds no .wav and no --manifest given")
    return sources


def plan_folder(args: argparse.Namespace, sources: Sequence[Path]) -> list[dict]:
    """What to build, decided by the seed alone: one dict per file (path, kind, recipe)."""
    rng = np.random.default_rng(SEED)
    n_long = 1 if args.long_minutes > 0 else 0
    n_medium = max(1, args.files // 50)
    n_short = args.files - args.broken - n_long - n_medium
    long_seconds = 60 * args.long_minutes
    medium_cap = long_seconds if n_long else 300.0
    plan = []
    order = rng.permutation(len(sources))
    for i in range(n_short):
        folder = SUBFOLDERS[rng.integers(len(SUBFOLDERS))]
        # Mostly single utterances (copied as they are), some joined into tens of seconds.
        parts = int(rng.choice([1, 1, 1, 2, 3, 5, 8, 12]))
        recipe = {"copy": int(order[i % len(order)])} if parts == 1 else {"utterances": parts}
        plan.append({"path": f"{folder}/clip-{i:04d}.wav".lstrip("/"), "kind": "short", **recipe})
    for i in range(n_medium):
        folder = SUBFOLDERS[rng.integers(len(SUBFOLDERS))]
        seconds = min(medium_cap, float(rng.uniform(120, 300)))
        path = f"{folder}/talk-{i:02d}.wav".lstrip("/")
        plan.append({"path": path, "kind": "medium", "seconds": seconds})
    if n_long:
        # Mid-list (files are taken in sorted order), so a kill halfway through the job lands
        # in the long file with short files done before it and others still to do after it.
        plan.append({"path": "day-01/recording.wav", "kind": "long", "seconds": long_seconds})
    for i in range(args.broken):
        folder = SUBFOLDERS[rng.integers(len(SUBFOLDERS))]
        kind = BROKEN_KINDS[i % len(BROKEN_KINDS)]
        path = f"{folder}/broken-{kind}-{i:02d}.wav".lstrip("/")
        plan.append({"path": path, "kind": "broken", "broken": kind})
    for item in plan:
        item.setdefault("seed", int(rng.integers(10**9)))
    return plan


class SpeechPool:
    """The source utterances at 16 kHz as int16, each read once when first needed."""

    def __init__(self, sources: Sequence[Path]) -> None:
        self.sources = list(sources)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> np.ndarray:
        if i not in self._cache:
            waveform = load_audio(self.sources[i], RATE)  # (T,) float in [-1, 1]
            pcm = (waveform.clamp(-1.0, 1.0) * 32767.0).round().to(torch.int16).numpy()
            self._cache[i] = pcm
        return self._cache[i]


def write_speech(
    path: Path, pool: SpeechPool, rng: np.random.Generator, seconds: float, utterances: int = 0
) -> float:
    """Random utterances joined by 0.2-0.8 s pauses, ``utterances`` of them or until ``seconds``
    are reached, appended to the file one utterance at a time: an hour is never all in memory.

    Returns:
        the file's duration in seconds.
    """
    written, count = 0, 0
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16", format="WAV") as out:
        while (count < utterances) if utterances else (written < seconds * RATE):
            speech = pool[int(rng.integers(len(pool)))]
            pause = np.zeros(int(rng.uniform(0.2, 0.8) * RATE), dtype=np.int16)
            out.write(speech)
            out.write(pause)
            written += len(speech) + len(pause)
            count += 1
    return written / RATE


def write_broken(path: Path, kind: str, pool: SpeechPool) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("These are meeting notes, not audio.\n" * 20, encoding="utf-8")
    else:  # a wav cut inside its header
        wav = io.BytesIO()
        sf.write(wav, pool[0], RATE, subtype="PCM_16", format="WAV")
        path.write_bytes(wav.getvalue()[:30])


def build_folder(args: argparse.Namespace, workdir: Path) -> Folder:
    """The benchmark folder, built into WORKDIR/folder, or the one there if it was built with
    the same options from the same sources."""
    sources = speech_sources(args.manifest)
    plan = plan_folder(args, sources)
    key = {
        "version": FOLDER_VERSION,
        "seed": SEED,
        "plan": plan,
        "sources": list(map(str, sources)),
    }
    root, stamp = workdir / "folder", workdir / "folder.json"
    if stamp.is_file():
        cached = json.loads(stamp.read_text())
        files = [FolderFile(**f) for f in cached["files"]]
        if cached["key"] == key and all((root / f.path).is_file() for f in files):
            return Folder(root.resolve(), files, cached["build_seconds"], reused=True)
    started = time.perf_counter()
    building = workdir / "folder.partial"
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    pool = SpeechPool(sources)
    files = []
    for item in plan:
        path = building / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(item["seed"])
        duration = 0.0
        if item["kind"] == "broken":
            write_broken(path, item["broken"], pool)
        elif "copy" in item:
            shutil.copyfile(sources[item["copy"]], path)
            duration = sf.info(str(path)).duration
        else:
            duration = write_speech(
                path, pool, rng, item.get("seconds", 0), item.get("utterances", 0)
            )
        files.append(FolderFile(item["path"], item["kind"], duration))
    os.replace(building, root)
    build_seconds = time.perf_counter() - started
    record = {"key": key, "files": [asdict(f) for f in files], "build_seconds": build_seconds}
    stamp.write_text(json.dumps(record, indent=1) + "\n")
    return Folder(root.resolve(), files, build_seconds)


# --- running and measuring -------------------------------------------------------------------


def _beside_python(name: str) -> str | None:
    # The script beside this interpreter, so the runs use this very installation.
    script = Path(sys.executable).parent / name
    return str(script) if script.is_file() else shutil.which(name)


def cli_command() -> list[str]:
    script = _beside_python("speechseq")
    return [script] if script else [sys.executable, "-m", "speechseq"]


def torchrun_command() -> list[str]:
    script = _beside_python("torchrun")
    launcher = [script] if script else [sys.executable, "-m", "torch.distributed.run"]
    return [*launcher, "--standalone", "--nproc-per-node", str(RANKS), "-m", "speechseq"]


def _proc_parents() -> dict[int, int]:
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB; (0, 0) once it is gone."""
    try:
        rss = pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
        return rss, pss
    except (OSError, ValueError):
        return 0, 0


class TreeMemory(threading.Thread):
    """Samples the resident memory of a process and all its descendants until stopped.

    ``peak_kb`` is the largest RSS total over the tree (``peak_pss_kb`` the same in PSS, which
    splits shared pages between the processes sharing them); ``group_peak_kb`` the largest RSS
    total of each subtree under a direct child of the root (torchrun's ranks, each with its
    DataLoader worker), keyed by the child's pid.
    """

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self.group_peak_kb: dict[int, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(POLL_SECONDS)

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for pid, parent in _proc_parents().items():
            children.setdefault(parent, []).append(pid)

        def subtree(pid: int) -> list[int]:
            found, todo = [], [pid]
            while todo:
                p = todo.pop()
                found.append(p)
                todo += children.get(p, [])
            return found

        total, total_pss = _memory_kb(self.root)
        for child in children.get(self.root, []):
            memory = [_memory_kb(p) for p in subtree(child)]
            group = sum(rss for rss, _ in memory)
            self.group_peak_kb[child] = max(self.group_peak_kb.get(child, 0), group)
            total += group
            total_pss += sum(pss for _, pss in memory)
        self.peak_kb = max(self.peak_kb, total)
        self.peak_pss_kb = max(self.peak_pss_kb, total_pss)

    def stop(self) -> None:
        self._done.set()
        self.join()


def launch(run: Run, log_dir: Path, kill_when: Callable[[float], bool] | None = None) -> None:
    """Run ``run.command`` to its end, or until ``kill_when(seconds since launch)`` is true and
    its process group is SIGKILLed; fill in wall time, exit status and memory."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(run.threads)}  # torchrun would force 1
    if run.python_path:
        env["PYTHONPATH"] = run.python_path
    suffix = "-killed" if kill_when is not None else ""
    with (
        open(log_dir / f"stdout{suffix}.txt", "w") as stdout,
        open(log_dir / f"stderr{suffix}.txt", "w") as stderr,
    ):
        run.started_at, started = time.time(), time.perf_counter()
        proc = subprocess.Popen(
            run.command, stdout=stdout, stderr=stderr, env=env, start_new_session=True
        )
        memory = TreeMemory(proc.pid)
        memory.start()
        while True:
            # wait4, not Popen.wait: its rusage covers the whole tree the child reaped.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if kill_when is not None and not run.killed:
                if kill_when(time.perf_counter() - started):
                    with contextlib.suppress(ProcessLookupError):  # the group ended meanwhile
                        os.killpg(proc.pid, signal.SIGKILL)
                    run.killed = True
            time.sleep(0.02)
        run.wall = time.perf_counter() - started
        proc.returncode = run.returncode = os.waitstatus_to_exitcode(status)
        memory.stop()
    run.peak_rss_mb = memory.peak_kb / 1024
    run.peak_pss_mb = memory.peak_pss_kb / 1024
    run.rank_peak_rss_mb = [kb / 1024 for kb in memory.group_peak_kb.values()]
    run.largest_process_mb = usage.ru_maxrss / 1024  # KiB on Linux


def warm_file_cache(folder: Folder) -> None:
    # Each run should read from the page cache, not pay for cold disk reads on another's behalf.
    for f in folder.files:
        with open(folder.root / f.path, "rb") as file:
            while file.read(1 << 24):
                pass


def report_lines(out: Path, folder: Folder) -> list[dict]:
    """Every line of every report in ``out``, its input made relative to the folder."""
    lines = []
    for report in sorted(out.glob("report*.jsonl")):
        for text in report.read_text(encoding="utf-8").splitlines():
            line = json.loads(text)
            line["file"] = str(Path(line["input"]).relative_to(folder.root))
            line["report"] = report.name
            lines.append(line)
    return lines


def output_tree(out: Path) -> dict[str, str]:
    """sha256 of each file under ``out`` but the reports, by path below ``out``."""
    tree = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and not (path.parent == out and path.name.startswith("report")):
            tree[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


def _leftovers(tree: dict[str, str]) -> list[str]:
    return [p for p in tree if Path(p).name.startswith(".") and p.endswith(".tmp")]


# --- checks ----------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.results: list[dict] = []

    def add(self, name: str, problems: Sequence[str], note: str = "") -> None:
        self.results.append({"check": name, "ok": not problems, "problems": list(problems)})
        mark = "PASS" if not problems else "FAIL"
        print(f"  [{mark}] {name}{f' ({note})' if note else ''}")
        for problem in problems[:5]:
            print(f"         {problem}")
        if len(problems) > 5:
            print(f"         … and {len(problems) - 5} more")

    @property
    def failed(self) -> bool:
        return any(not r["ok"] for r in self.results)


def _few(items) -> str:
    items = sorted(items)
    return ", ".join(items[:3]) + (f" … ({len(items)} in all)" if len(items) > 3 else "")


def complete_problems(folder: Folder, tree: dict[str, str], lines: list[dict]) -> list[str]:
    """A finished job's transcripts and its last attempt at each input, against the folder."""
    problems = []
    expected = {f.transcript for f in folder.good}
    found = {p for p in tree if p not in _leftovers(tree)}
    if expected - found:
        problems.append(f"no transcript for {_few(expected - found)}")
    if found - expected:
        problems.append(f"unexpected files {_few(found - expected)}")
    if _leftovers(tree):
        problems.append(f"temporary files left {_few(_leftovers(tree))}")
    final = {}
    for line in lines:  # a later run's line replaces an earlier one's
        final[line["file"]] = line
    for f in folder.files:
        line = final.get(f.path)
        want = "failed" if f.kind == "broken" else ("ok", "skipped")
        if line is None:
            problems.append(f"{f.path}: not in any report")
        elif line["status"] not in want:
            problems.append(f"{f.path}: {line['status']}, expected {want}")
    durations = {f.path: f.duration for f in folder.files}
    for line in lines:  # the report rounds to milliseconds
        file, duration = line["file"], line["duration"]
        if line["status"] == "ok" and abs(duration - durations.get(file, -1.0)) > 0.002:
            problems.append(
                f"{file}: reported {duration} s, the file holds {durations.get(file)} s"
            )
    return problems


def once_per_run_problems(run: Run) -> list[str]:
    counts = Counter(line["file"] for line in run.lines)
    return [f"{file}: {n} lines in one run" for file, n in counts.items() if n > 1]


def identical_problems(reference: dict[str, str], tree: dict[str, str]) -> list[str]:
    differ = [p for p in reference if p in tree and tree[p] != reference[p]]
    return [f"{p}: differs from the 1-process transcript" for p in sorted(differ)]


# A file batched with different neighbours (other ranks, a resumed job) goes through other BLAS
# shapes, so its log-probs can move in their last bits, and a near-tie (a frame's top two
# tokens for greedy decoding, two hypotheses for beam search) can tip the other way.
MAX_WORD_CHANGES = 0.001
# An int8 model (speechseq export --int8) quantizes its activations with one scale per batch
# and time step, so a file's posteriors move with its neighbours by up to ~0.1, not in their
# last bits: 3.4 % of the words differed between the 1-process and 2-rank runs when this was
# set (WER on the test sets moves by under 0.3 points either way).
MAX_WORD_CHANGES_INT8 = 0.05


def same_transcripts(
    bench: Bench, reference: dict[str, str], tree: dict[str, str], out: Path
) -> tuple[list[str], str]:
    """Transcripts equal to the 1-process ones, but for near-ties: at most MAX_WORD_CHANGES of
    the words may differ (MAX_WORD_CHANGES_INT8 for an int8 model; counted over the differing
    transcripts). Returns problems, note."""
    problems = identical_problems(reference, tree)
    if not problems:
        return problems, ""
    single = bench.runs_dir / "single" / "out"
    changed, total = 0, 0
    for path in reference:
        ours = (single / path).read_text(encoding="utf-8").split()
        total += len(ours)
        if path in tree and tree[path] != reference[path]:
            theirs = (out / path).read_text(encoding="utf-8").split()
            matcher = difflib.SequenceMatcher(a=ours, b=theirs, autojunk=False)
            same = sum(block.size for block in matcher.get_matching_blocks())
            changed += max(len(ours), len(theirs)) - same
    int8 = precision(load_checkpoint(bench.model)) == "int8"
    why = "int8 activation scales shared with" if int8 else "near-ties under"
    note = f"{len(problems)} transcripts differ in {changed} of {total} words: {why} other batches"
    allowed = MAX_WORD_CHANGES_INT8 if int8 else MAX_WORD_CHANGES
    return ([] if changed <= allowed * total else problems), note


def resume_problems(
    folder: Folder, at_kill: dict[str, str], killed: Run, rerun: Run
) -> tuple[list[str], list[str]]:
    """Was anything lost or redone between the killed run and its re-run? Returns the problems
    and notes on things that are not failures."""
    problems, notes = [], []
    good = {f.path for f in folder.good}
    done = {f.path for f in folder.good if f.transcript in at_kill}
    logged_ok = {line["file"] for line in killed.lines if line["status"] == "ok"}
    skipped = {line["file"] for line in rerun.lines if line["status"] == "skipped"}
    redone = {line["file"] for line in rerun.lines if line["status"] == "ok"}
    if logged_ok - done:
        problems.append(f"reported ok before the kill but no transcript: {_few(logged_ok - done)}")
    if done - logged_ok:
        notes.append(
            f"transcript written but no report line before the kill: {_few(done - logged_ok)}"
        )
    if skipped != done:
        problems.append(
            f"re-run skipped {len(skipped)} files, {len(done)} were done "
            f"(not skipped: {_few(done - skipped) or '-'}; skipped, not done: "
            f"{_few(skipped - done) or '-'})"
        )
    if redone & done:
        problems.append(f"redone after the kill: {_few(redone & done)}")
    if redone != good - done:
        problems.append(f"re-run transcribed {len(redone)} files, {len(good - done)} were left")
    if not done:
        notes.append("the kill came before the first transcript: nothing was there to lose")
    elif done == good:
        notes.append("the kill came after the last transcript: nothing was left to resume")
    if _leftovers(at_kill):
        notes.append(f"the kill left temporary files: {_few(_leftovers(at_kill))}")
    return problems, notes


# --- the table -------------------------------------------------------------------------------


def row(run: Run, files: int) -> dict:
    handled = run.count("ok") + run.count("failed")
    ranks = run.rank_peak_rss_mb if run.ranks > 1 else []
    return {
        "run": run.name,
        "files": files,
        "ok": run.count("ok"),
        "failed": run.count("failed"),
        "skipped": run.count("skipped"),
        "audio_hours": run.audio_seconds / 3600,
        "wall_seconds": run.wall,
        "files_per_second": handled / run.wall,
        "times_real_time": run.audio_seconds / run.wall,
        "peak_rss_mb": run.peak_rss_mb,
        "peak_rss_max_rank_mb": max(ranks) if ranks else None,
        "peak_rss_sum_ranks_mb": sum(ranks) if ranks else None,
        "largest_process_mb": run.largest_process_mb,
        "peak_pss_mb": run.peak_pss_mb,
        "startup_seconds": run.startup,
        "last_line_seconds": run.last_line,
        "threads": run.threads,
        "returncode": run.returncode,
        "killed": run.killed,
        "command": run.command,
    }


def print_table(rows: Sequence[dict]) -> None:
    print(
        "\n| run | files | ok | failed | skipped | audio h | wall s | files/s | × real time "
        "| peak RSS MB | peak PSS MB | start-up s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rss = f"{r['peak_rss_mb']:.0f}"
        startup = f"{r['startup_seconds']:.1f}" if r["startup_seconds"] is not None else "-"
        if r["peak_rss_max_rank_mb"] is not None:
            rss += (
                f" (max rank {r['peak_rss_max_rank_mb']:.0f}, sum {r['peak_rss_sum_ranks_mb']:.0f})"
            )
        print(
            f"| {r['run']} | {r['files']} | {r['ok']} | {r['failed']} | {r['skipped']} "
            f"| {r['audio_hours']:.3f} | {r['wall_seconds']:.1f} | {r['files_per_second']:.2f} "
            f"| {r['times_real_time']:.0f}× | {rss} | {r['peak_pss_mb']:.0f} | {startup} |"
        )


def machine_info() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# --- the benchmark ---------------------------------------------------------------------------


def rank_split(run: Run) -> list[str]:
    """Files and audio each rank got: the split strides over the sorted list, blind to length."""
    shares = []
    for report in sorted({line["report"] for line in run.lines}):
        mine = [line for line in run.lines if line["report"] == report]
        audio = sum(line["duration"] for line in mine)
        busy = sum(line["seconds"] for line in mine)
        shares.append(f"{report}: {len(mine)} files, {audio / 3600:.3f} h audio, {busy:.1f} s busy")
    return shares


@dataclass
class Bench:
    """What every run shares: the folder, the model, where runs go, the checks so far."""

    args: argparse.Namespace
    folder: Folder
    model: Path
    runs_dir: Path
    checks: Checks
    threads: int
    rank_threads: int

    @property
    def expected_rc(self) -> int:
        return 1 if self.folder.broken else 0  # the CLI exits 1 when any input failed

    def command(
        self, launcher: list[str], out: Path, threads: int, model: Path | None = None
    ) -> list[str]:
        command = [*launcher, "transcribe", str(self.folder.root), "--output-dir", str(out)]
        command += ["--model", str(model or self.model), "--device", "cpu"]
        command += ["--threads", str(threads)]
        command += ["--decoder", self.args.decoder]
        if self.args.workers is not None:
            command += ["--workers", str(self.args.workers)]
        return command

    def fresh(self, name: str) -> Path:
        shutil.rmtree(self.runs_dir / name, ignore_errors=True)
        return self.runs_dir / name / "out"

    def launch(
        self, run: Run, name: str, out: Path, kill_when: Callable[[float], bool] | None = None
    ) -> None:
        """Launch, then keep the report lines this launch wrote (a run stamp not seen before)."""
        before = {line["run"] for line in report_lines(out, self.folder)}
        launch(run, self.runs_dir / name, kill_when)
        run.lines = [line for line in report_lines(out, self.folder) if line["run"] not in before]
        if run.lines:
            # RunReport stamps its lines with the (local) time it was opened, after start-up.
            opened = min(datetime.fromisoformat(line["run"]).timestamp() for line in run.lines)
            written = max((out / line["report"]).stat().st_mtime for line in run.lines)
            run.startup, run.last_line = opened - run.started_at, written - run.started_at
        if kill_when is None and run.returncode != self.expected_rc:
            tail = (self.runs_dir / name / "stderr.txt").read_text().strip().splitlines()[-3:]
            raise SpeechseqError(
                f"{run.name}: exit status {run.returncode}, expected {self.expected_rc}: "
                + " / ".join(tail)
            )


def _plural(threads: int) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}"


def run_single(bench: Bench, baseline: Path | None = None) -> tuple[Run, dict[str, str]]:
    """The 1-process job with the model, or with ``baseline`` (the row named after it)."""
    name = "baseline" if baseline else "single"
    out = bench.fresh(name)
    threads = bench.threads
    label = f"1 process, {_plural(threads)}" + (f", baseline {baseline.name}" if baseline else "")
    run = Run(label, bench.command(cli_command(), out, threads, baseline), threads)
    if baseline and bench.args.baseline_code:
        run.python_path = str(bench.args.baseline_code.resolve())
        run.name += f" (code of {bench.args.baseline_code})"
    bench.launch(run, name, out)
    tree = output_tree(out)
    what = f"baseline {baseline.name}" if baseline else "1 process"
    bench.checks.add(
        f"{what}: every file done once", complete_problems(bench.folder, tree, run.lines)
    )
    bench.checks.add(f"{what}: one report line per file", once_per_run_problems(run))
    return run, tree


def run_ranks(bench: Bench, reference: dict[str, str]) -> tuple[Run, list[str]]:
    out = bench.fresh("ranks")
    threads = bench.rank_threads
    name = f"{RANKS} ranks, {_plural(threads)} each"
    run = Run(name, bench.command(torchrun_command(), out, threads), threads, ranks=RANKS)
    bench.launch(run, "ranks", out)
    tree = output_tree(out)
    reports = sorted({line["report"] for line in run.lines})
    wanted = [f"report.shard{k}.jsonl" for k in range(RANKS)]
    misnamed = [f"reports {reports}, expected {wanted}"] if reports != wanted else []
    bench.checks.add(
        f"{RANKS} ranks: every file done once",
        complete_problems(bench.folder, tree, run.lines) + misnamed,
    )
    bench.checks.add(f"{RANKS} ranks: one report line per file", once_per_run_problems(run))
    problems, note = same_transcripts(bench, reference, tree, out)
    bench.checks.add(f"{RANKS} ranks: transcripts match the 1-process ones", problems, note)
    shares = rank_split(run)
    for share in shares:
        print(f"         {share}")
    return run, shares


def kill_halfway(report: Path, work_seconds: float) -> Callable[[float], bool]:
    """A kill condition: true once the job has worked ``work_seconds / 2`` since it opened its
    report (start-up varies from launch to launch on a busy machine; the work less so)."""
    opened = None

    def due(elapsed: float) -> bool:
        nonlocal opened
        if opened is None and report.exists():
            opened = elapsed
        return opened is not None and elapsed - opened >= work_seconds / 2

    return due


def run_resume(bench: Bench, reference: dict[str, str], work: float) -> tuple[list[Run], dict]:
    """The 1-process job killed after half its ``work`` seconds, then run again."""
    out = bench.fresh("resume")
    folder, threads = bench.folder, bench.threads
    command = bench.command(cli_command(), out, threads)
    killed = Run("resume: killed", command, threads)
    bench.launch(killed, "resume", out, kill_when=kill_halfway(out / "report.jsonl", work))
    killed.name = f"resume: killed at {killed.wall:.1f} s"
    at_kill = output_tree(out)
    rerun = Run("resume: re-run", command, threads)
    bench.launch(rerun, "resume", out)
    tree = output_tree(out)

    done = sum(1 for f in folder.good if f.transcript in at_kill)
    problems, notes = resume_problems(folder, at_kill, killed, rerun)
    if not killed.killed:
        notes.append(f"the first run ended by itself in {killed.wall:.1f} s, before the kill")
    bench.checks.add(
        "resume: nothing lost or redone",
        problems,
        f"{done} of {len(folder.good)} transcripts were there at the kill",
    )
    for note in notes:
        print(f"         note: {note}")
    # Temporary files a kill leaves behind are litter, not lost work: noted, not failed.
    final = {p: h for p, h in tree.items() if p not in _leftovers(tree)}
    bench.checks.add(
        "resume: every file done once",
        complete_problems(folder, final, killed.lines + rerun.lines),
    )
    bench.checks.add("resume: one report line per file per run", once_per_run_problems(rerun))
    problems, note = same_transcripts(bench, reference, final, out)
    bench.checks.add("resume: transcripts match the 1-process ones", problems, note)
    details = {"done_at_kill": done, "notes": notes, "temporary_files": _leftovers(tree)}
    return [killed, rerun], details


def run_benchmark(args: argparse.Namespace, checks: Checks) -> dict:
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    model = Path(args.model or default_recognizer_path()).resolve()
    if not model.is_file():
        raise SpeechseqError(f"{model}: no such checkpoint")
    machine = machine_info()
    usable = machine["usable_cpus"]
    print(
        f"machine: {machine['cpu_count']} CPUs ({usable} usable here), torch {machine['torch']}, "
        f"python {machine['python']}, load average {machine['load_average']}"
    )
    print(f"model: {model}")

    folder = build_folder(args, workdir)
    kinds = Counter(f.kind for f in folder.files)
    longest = max(f.duration for f in folder.files)
    print(
        f"folder: {folder.root}: {len(folder.files)} files "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
        f"{folder.audio_seconds / 3600:.3f} h of audio, longest {longest / 60:.1f} min "
        f"({'reused' if folder.reused else 'built'}; building took {folder.build_seconds:.1f} s)"
    )
    warm_file_cache(folder)
    bench = Bench(
        args,
        folder,
        model,
        workdir / "runs",
        checks,
        threads=args.threads or usable,
        rank_threads=args.threads or max(1, usable // RANKS),
    )
    print("\nchecks:")
    runs, extra = [], {}
    if args.baseline is not None:
        base, _ = run_single(bench, args.baseline.resolve())
        runs.append(base)
    single, reference = run_single(bench)
    runs.append(single)
    if args.baseline is not None:
        ratio = (single.audio_seconds / single.wall) / (base.audio_seconds / base.wall)
        extra["throughput_over_baseline"] = round(ratio, 2)
        print(
            f"         throughput of {model.name} over baseline {args.baseline.name}: {ratio:.2f}×"
        )
    if not args.skip_ranks:
        ranks, extra["rank_split"] = run_ranks(bench, reference)
        runs.append(ranks)
    if not args.skip_resume:
        work = (single.last_line or single.wall) - (single.startup or 0.0)
        resumed, extra["resume"] = run_resume(bench, reference, work)
        runs += resumed

    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\nload average after the runs: {machine['load_average_after']}")
    rows = [row(run, len(folder.files)) for run in runs]
    print_table(rows)
    return {
        "machine": machine,
        "model": str(model),
        "folder": {
            "root": str(folder.root),
            "files": len(folder.files),
            "kinds": dict(kinds),
            "audio_seconds": folder.audio_seconds,
            "build_seconds": folder.build_seconds,
            "list": [asdict(f) for f in folder.files],
        },
        "runs": rows,
        "checks": checks.results,
        **extra,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    fixed = args.broken + (1 if args.long_minutes > 0 else 0) + max(1, args.files // 50)
    if args.files <= fixed:
        parser.error(f"--files must exceed the {fixed} broken, long and multi-minute files")
    if args.broken < 0 or args.long_minutes < 0:
        parser.error("--broken and --long-minutes cannot be negative")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    checks = Checks()
    try:
        report = run_benchmark(args, checks)
    except SpeechseqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json}")
    if checks.failed:
        print("\nsome checks failed (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
