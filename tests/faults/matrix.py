"""Run a matrix of fault cases against the speechseq command line, as a user meets them, and
print a Markdown table of what each one did.

    python tests/faults/matrix.py [--keep DIR]
    python tests/faults/matrix.py --only 16 36   # just these cases (numbered as in the table)

Each case runs the installed ``speechseq`` command (a few run the Python API) in a subprocess, in
a fresh folder under one temporary folder (``--keep DIR``: under DIR, left in place afterwards).
Verdicts: ``ok``; ``traceback`` (a Python traceback reached the user); ``wrong`` (no traceback,
but not what is expected: a wrong exit code, an error line that does not name the user's path,
words made up from noise, a file overwritten); ``lost`` (finished work lost or changed, or a
temporary ``.~*-tmp*`` or ``.*.lock`` file left in an output folder once the run is over). A
totals line follows the table; the exit status is 0 when every case is ok, 1 otherwise.

Run it as root: it mounts small tmpfs folders for a read-only and a full disk, and runs one case
with its capabilities dropped so a file's mode binds. About 3 minutes on two CPU cores, more
when they are busy. It is not collected by pytest (its name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
SAMPLE = SAMPLES / "flite-rms.wav"
PRETRAINED = REPO / "speechseq" / "pretrained"
TINY_RECIPE = REPO / "recipes" / "tiny" / "asr" / "hparams" / "train.yaml"
GOLDEN_GREEDY = REPO / "tests" / "golden" / "transcribe-greedy.txt"
RATE = 16000
# The decoder does not matter to most cases, and greedy is the fast one. One torch thread: the
# machine may be shared, and torch's two threads on two busy cores run up to 50 times slower.
ONE_THREAD = ("--threads", "1")
QUICK = ("--decoder", "greedy", *ONE_THREAD)
TINY_MODEL = (
    "model.hidden_size=16",
    "model.num_layers=1",
    "model.conv_channels=4",
    "train.num_threads=1",
)
LEFTOVERS = (".~*-tmp*", ".*.lock")
VERDICTS = ("traceback", "lost", "wrong")  # worst first: a case gets the worst it shows
SUMMARY = re.compile(r"^\d+ succeeded, \d+ failed, \d+ skipped")
# root ignores file modes; without its capabilities it is an ordinary owner again
DROP_CAPS = ("setpriv", "--inh-caps=-all", "--bounding-set=-all", "--")


@dataclass
class Ran:
    """What one command did: its exit code and output."""

    code: int
    out: str
    err: str

    @property
    def traceback(self) -> bool:
        # some error paths lowercase the message, traceback and all
        return "traceback (most recent call last)" in (self.out + self.err).lower()

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith(prefix)]

    @property
    def summary(self) -> str:
        return next((line for line in self.err.splitlines() if SUMMARY.match(line)), "")

    @property
    def stray(self) -> list[str]:
        """stderr lines that are neither an error, a warning nor the summary."""
        known = ("error:", "warning:")
        lines = [line for line in self.err.splitlines() if line.strip()]
        return [line for line in lines if not line.startswith(known) and not SUMMARY.match(line)]


@dataclass
class Seen:
    """What a case saw: notes for the table, and the faults that make its verdict."""

    notes: list[str] = field(default_factory=list)
    faults: dict[str, list[str]] = field(default_factory=dict)
    adapted: str = ""

    def note(self, text: str) -> None:
        self.notes.append(text)

    def expect(self, ok: bool, fault: str, verdict: str = "wrong") -> bool:
        if not ok and fault not in self.faults.get(verdict, []):
            self.faults.setdefault(verdict, []).append(fault)
        return ok

    def ran(self, ran: Ran) -> None:
        """A traceback anywhere in a command's output is a fault of its own."""
        if ran.traceback:
            last = [line for line in ran.err.splitlines() if line.strip()][-1:]
            ending = f", ending {last[0][:100]!r}" if last else ""
            self.expect(False, f"traceback{ending}", "traceback")

    def clean(self, folder: Path, when: str = "") -> None:
        """Nothing temporary left in an output folder."""
        left = leftovers(folder)
        names = ", ".join(sorted({p.name for p in left})[:3])
        where = f" {when}" if when else ""
        self.expect(not left, f"{len(left)} left{where}: {names}", "lost")

    @property
    def verdict(self) -> str:
        return next((v for v in VERDICTS if self.faults.get(v)), "ok")

    def text(self) -> str:
        faults = [f for v in VERDICTS for f in self.faults.get(v, [])]
        return "; ".join(self.notes) + (" — faults: " + "; ".join(faults) if faults else "")


@dataclass(frozen=True)
class Case:
    area: str
    name: str
    expected: str
    check: Callable[[Path, Seen], None]


CASES: list[Case] = []


def case(area: str, name: str, expected: str) -> Callable:
    """Register a check (run in a fresh folder, noting into a ``Seen``) as the next case."""

    def register(check: Callable[[Path, Seen], None]) -> Callable[[Path, Seen], None]:
        CASES.append(Case(area, name, expected, check))
        return check

    return register


# ---------------------------------------------------------------------------- running commands


def speechseq(*args: str, cwd: Path, prefix: tuple[str, ...] = (), timeout: float = 300) -> Ran:
    """Run ``speechseq ARGS`` as a user would, from ``cwd``."""
    return command([*prefix, "speechseq", *args], cwd, timeout)


def command(argv: list[str], cwd: Path, timeout: float = 300) -> Ran:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Ran(124, "", f"matrix: {argv[0]} timed out after {timeout:.0f} s")
    return Ran(done.returncode, done.stdout, done.stderr)


def start(*args: str, cwd: Path) -> subprocess.Popen:
    """``speechseq ARGS`` in the background, in a session of its own so the matrix can clear
    up the processes it started (a killed job's data-loading worker) by their group id."""
    return subprocess.Popen(
        ["speechseq", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> Ran:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\nmatrix: killed after {timeout:.0f} s"
    # what is left of the group this matrix started: a killed job's reader worker
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return Ran(proc.returncode, out, err)


def wait_for(ready: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> bool:
    """Poll until ``ready()``; False if the process ended first or time ran out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if ready():
            return True
        time.sleep(0.05)
    return False


def pytest_fallback(seen: Seen, node: str) -> None:
    """Where the real fault cannot be made here, run the in-process test that injects it."""
    ran = command([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node], REPO)
    tail = (ran.out.strip().splitlines() or ["no output"])[-1]
    seen.adapted = f"fell back to {node}"
    seen.note(f"in-process test: {tail}")
    seen.expect(ran.code == 0, "the in-process test failed")


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[bool]:
    """A tmpfs mounted at ``folder`` (unmounted afterwards); yields whether it could be."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    mounted = command(mount, folder.parent).code == 0
    try:
        yield mounted
    finally:
        if mounted and command(["umount", str(folder)], folder.parent).code != 0:
            command(["umount", "-l", str(folder)], folder.parent)  # busy: detach it anyway


# ------------------------------------------------------------------------------ files and checks


def leftovers(folder: Path) -> list[Path]:
    return [p for pattern in LEFTOVERS for p in folder.rglob(pattern)] if folder.is_dir() else []


def transcripts(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.txt") if not p.name.startswith(".")]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Each transcript's content hash and modification time, to tell if a run touched it."""
    return {
        str(p.relative_to(folder)): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in transcripts(folder)
    }


def report_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def copy_samples(folder: Path, copies: int) -> Path:
    """``folder/cK/*.wav``: the five samples, ``copies`` times."""
    for k in range(copies):
        (folder / f"c{k}").mkdir(parents=True)
        for wav in SAMPLES.glob("*.wav"):
            shutil.copy(wav, folder / f"c{k}" / wav.name)
    return folder


def write_wav(
    path: Path, samples: np.ndarray, rate: int = RATE, subtype: str | None = None
) -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


def golden_greedy(name: str) -> str:
    """The shipped model's greedy transcript of ``data/samples/NAME`` (tests/golden)."""
    for line in GOLDEN_GREEDY.read_text().splitlines():
        path, text = line.split("\t")
        if path.endswith("/" + name):
            return text
    return ""


def one_error(seen: Seen, ran: Ran, code: int, *names: str) -> str:
    """The command ended with exit ``code`` and one ``error:`` line naming each of ``names``,
    with nothing else on stderr but the summary and warnings. Returns the line."""
    seen.ran(ran)
    errors = ran.lines("error:")
    line = errors[0] if errors else ""
    seen.note(f"exit {ran.code}; {line or 'no error: line'}")
    seen.expect(ran.code == code, f"exit {ran.code}, not {code}")
    seen.expect(len(errors) == 1, f"{len(errors)} error: lines")
    for name in names:
        seen.expect(name in line, f"the error does not say {name!r}")
    stray = ran.stray
    if stray:
        seen.expect(False, f"the error runs on over {len(stray)} more lines ({stray[0][:60]!r})")
    return line


def input_fails(seen: Seen, ran: Ran, name: str, *says: str) -> None:
    """``transcribe`` with one bad input: exit 1, one error line naming it, the summary."""
    one_error(seen, ran, 1, name, *says)
    seen.expect(ran.summary.startswith("0 succeeded, 1 failed"), "no summary counting it failed")


def unreadable_by_us(path: Path) -> bool:
    """Whether a process without root's capabilities is refused ``path``."""
    if shutil.which("setpriv") is None:
        return False
    return command([*DROP_CAPS, "head", "-c", "1", str(path)], path.parent).code != 0


# ----------------------------------------------------------------------------------- inputs


@case("inputs", "missing file", "exit 1, one error: naming it")
def missing_file(work: Path, seen: Seen) -> None:
    input_fails(seen, speechseq("transcribe", "missing.wav", *QUICK, cwd=work), "missing.wav")


@case("inputs", "empty 0-byte .wav", "exit 1, one error: naming it")
def empty_file(work: Path, seen: Seen) -> None:
    (work / "empty.wav").write_bytes(b"")
    input_fails(seen, speechseq("transcribe", "empty.wav", *QUICK, cwd=work), "empty.wav")


@case("inputs", "text file named .wav", "exit 1, one error: naming it")
def text_as_wav(work: Path, seen: Seen) -> None:
    (work / "notes.wav").write_text("a shopping list, not audio\n")
    input_fails(seen, speechseq("transcribe", "notes.wav", *QUICK, cwd=work), "notes.wav")


@case("inputs", "folder with no audio", "exit 1, one error: naming it")
def folder_without_audio(work: Path, seen: Seen) -> None:
    (work / "notes").mkdir()
    (work / "notes" / "a.txt").write_text("no audio here\n")
    input_fails(seen, speechseq("transcribe", "notes", *QUICK, cwd=work), "notes")


@case("inputs", "glob matching nothing (passed unexpanded)", "exit 1, one error: naming it")
def glob_matching_nothing(work: Path, seen: Seen) -> None:
    ran = speechseq("transcribe", "nothing*.wav", *QUICK, cwd=work)
    input_fails(seen, ran, "nothing*.wav")


@case("inputs", "float WAV holding NaN samples", "exit 1, one error: naming it")
def nan_samples(work: Path, seen: Seen) -> None:
    samples = np.zeros(RATE, dtype=np.float32)
    samples[100:200] = np.nan
    write_wav(work / "nan.wav", samples, subtype="FLOAT")
    input_fails(seen, speechseq("transcribe", "nan.wav", *QUICK, cwd=work), "nan.wav", "NaN")


@case("inputs", "10 s pure-silence WAV, -f json", "exit 0, empty transcript, report ok")
def pure_silence(work: Path, seen: Seen) -> None:
    write_wav(work / "silence.wav", np.zeros(10 * RATE, dtype=np.float32))
    ran = speechseq("transcribe", "silence.wav", "-o", "out", "-f", "json", *QUICK, cwd=work)
    seen.ran(ran)
    seen.note(f"exit {ran.code}; {ran.summary}")
    seen.expect(ran.code == 0 and not ran.lines("error:"), f"exit {ran.code}, {ran.err[:80]!r}")
    written = work / "out" / "silence.json"
    if seen.expect(written.exists(), "no silence.json"):
        doc = json.loads(written.read_text())
        seen.note(f"text {doc['text']!r}, {len(doc['segments'])} segments")
        seen.expect(doc["text"] == "" and doc["segments"] == [], "words in silence")
    rows = report_rows(work / "out" / "report.jsonl")
    seen.expect([r["status"] for r in rows] == ["ok"], f"report {[r['status'] for r in rows]}")
    seen.clean(work / "out")


@case(
    "inputs",
    "real WAV cut in half, -f json",
    "exit 0, a warning: naming it, JSON and report truncated",
)
def cut_in_half(work: Path, seen: Seen) -> None:
    whole = SAMPLE.read_bytes()
    (work / "half.wav").write_bytes(whole[: len(whole) // 2])
    ran = speechseq("transcribe", "half.wav", "-o", "out", "-f", "json", *QUICK, cwd=work)
    seen.ran(ran)
    warned = ran.lines("warning:")
    seen.note(f"exit {ran.code}; {warned[0] if warned else 'no warning'}")
    seen.expect(ran.code == 0 and not ran.lines("error:"), f"exit {ran.code}")
    seen.expect(len(warned) == 1 and "half.wav" in warned[0], "no one warning naming it")
    written = work / "out" / "half.json"
    doc = json.loads(written.read_text()) if written.exists() else {}
    seen.expect(doc.get("truncated") is True, 'no "truncated": true in half.json')
    seen.expect(bool(doc.get("text")), "no text for the half it holds")
    rows = report_rows(work / "out" / "report.jsonl")
    seen.expect(any(r.get("truncated") is True for r in rows), "no truncated report row")
    seen.clean(work / "out")


@case("inputs", "WAV header claiming 2e9 samples, then 10 bytes", "exit 1, one error: truncated")
def header_claims_too_much(work: Path, seen: Seen) -> None:
    header = bytearray(SAMPLE.read_bytes()[:44])
    if not seen.expect(header[36:40] == b"data", "the sample's data chunk moved: case not built"):
        return
    header[40:44] = struct.pack("<I", 2 * 10**9)  # the data chunk's byte count
    (work / "huge.wav").write_bytes(bytes(header) + b"\x01" * 10)
    ran = speechseq("transcribe", "huge.wav", *QUICK, cwd=work)
    input_fails(seen, ran, "huge.wav", "truncated")


@case(
    "inputs",
    "60 s white noise (0.1 std) beside a speech sample, -f json",
    "exit 0, no words for the noise, the speech transcribed",
)
def noise_beside_speech(work: Path, seen: Seen) -> None:
    (work / "in").mkdir()
    noise = 0.1 * np.random.default_rng(0).standard_normal(60 * RATE)
    write_wav(work / "in" / "noise.wav", noise.astype(np.float32))
    shutil.copy(SAMPLE, work / "in")
    ran = speechseq("transcribe", "in", "-o", "out", "-f", "json", *QUICK, cwd=work)
    seen.ran(ran)
    seen.expect(ran.code == 0, f"exit {ran.code}")
    texts = {}
    for name in ("noise", SAMPLE.stem):
        path = work / "out" / f"{name}.json"
        texts[name] = json.loads(path.read_text())["text"] if path.exists() else None
    seen.note(f"exit {ran.code}; noise {texts['noise']!r}, speech {texts[SAMPLE.stem]!r}")
    seen.expect(texts["noise"] == "", "words made up from noise")
    seen.expect(texts[SAMPLE.stem] == golden_greedy(SAMPLE.name), "speech not as its golden")
    seen.clean(work / "out")


@case(
    "inputs",
    "unreadable file (mode 000; root ignores modes, so the CLI runs through setpriv with root's "
    "capabilities dropped)",
    "exit 1, one error: naming it, permission denied",
)
def unreadable_file(work: Path, seen: Seen) -> None:
    locked = work / "locked.wav"
    shutil.copy(SAMPLE, locked)
    locked.chmod(0)
    if not unreadable_by_us(locked):
        pytest_fallback(
            seen, "tests/faults/test_inputs.py::test_an_unreadable_file_says_permission_denied"
        )
        return
    ran = speechseq("transcribe", "locked.wav", *QUICK, cwd=work, prefix=DROP_CAPS)
    input_fails(seen, ran, "locked.wav", "permission denied")


@case("inputs", "stereo 44.1 kHz WAV (a sample resampled)", "exit 0, transcribed")
def stereo_44k(work: Path, seen: Seen) -> None:
    mono, rate = sf.read(SAMPLE)
    times = np.arange(int(len(mono) * 44100 / rate)) * rate / 44100
    resampled = np.interp(times, np.arange(len(mono)), mono)
    write_wav(work / "stereo.wav", np.stack([resampled, 0.8 * resampled], axis=1), 44100)
    ran = speechseq("transcribe", "stereo.wav", *QUICK, cwd=work)
    seen.ran(ran)
    text = ran.out.rstrip("\n").partition("\t")[2]
    seen.note(f"exit {ran.code}; {text!r}")
    seen.expect(ran.code == 0 and bool(text.strip()), "not transcribed")


@case("inputs", "10 ms WAV", "exit 0, or exit 1 with one clear error:")
def ten_milliseconds(work: Path, seen: Seen) -> None:
    write_wav(work / "short.wav", sf.read(SAMPLE)[0][: RATE // 100])
    ran = speechseq("transcribe", "short.wav", *QUICK, cwd=work)
    if ran.code == 0:
        seen.ran(ran)
        seen.note(f"exit 0; text {ran.out.rstrip(chr(10)).partition(chr(9))[2]!r}")
    else:
        input_fails(seen, ran, "short.wav")


# ----------------------------------------------------------------------------------- outputs


@case("outputs", "--output-dir naming an existing file", "exit 2, one error: naming it")
def output_dir_is_a_file(work: Path, seen: Seen) -> None:
    (work / "out").write_text("a file, not a folder\n")
    ran = speechseq("transcribe", str(SAMPLE), "-o", "out", *QUICK, cwd=work)
    one_error(seen, ran, 2, "out")
    seen.expect((work / "out").read_text() == "a file, not a folder\n", "the file changed", "lost")


@case(
    "outputs",
    "--output-dir on a read-only folder (a tmpfs mounted ro)",
    "exit 2, one error: naming it, nothing written",
)
def read_only_output_dir(work: Path, seen: Seen) -> None:
    with tmpfs(work / "ro", "ro,size=1m") as mounted:
        if not mounted:
            node = "tests/faults/test_outputs.py::test_read_only_output_dir_fails_before_any_work"
            pytest_fallback(seen, node)
            return
        ran = speechseq("transcribe", str(SAMPLES), "-o", "ro", *QUICK, cwd=work)
        one_error(seen, ran, 2, "ro", "read-only")


@case(
    "outputs",
    "disk full: 20 inputs, -f all, into a 64 KiB tmpfs (default --batch-seconds and "
    "--workers); then the tmpfs remounted at 10 MB and the job re-run",
    "non-zero exit, one error: naming the file it could not write, no temp or lock left, a "
    "failed report row; the re-run finishes every input, finished files unchanged",
)
def disk_full(work: Path, seen: Seen) -> None:
    copy_samples(work / "in", copies=4)
    out = work / "full"
    args = ("transcribe", "in", "-o", "full", "-f", "all", *QUICK)
    with tmpfs(out, "size=64k") as mounted:
        if not mounted:
            node = (
                "tests/faults/test_outputs.py::"
                "test_a_full_disk_stops_the_job_cleanly_and_a_rerun_finishes_it"
            )
            pytest_fallback(seen, node)
            return
        first = speechseq(*args, cwd=work)
        seen.ran(first)
        errors = first.lines("error:")
        line = errors[0] if errors else "no error: line"
        seen.note(f"full: exit {first.code}; {line[:140]}")
        seen.expect(first.code != 0, "exit 0 on a full disk")
        seen.expect(len(errors) == 1 and "no space" in line, "no one error: saying no space")
        seen.expect("full/" in line, "the error names no file in the output folder")
        seen.clean(out, "after the full run")
        rows = report_rows(out / "report.jsonl")
        seen.expect(any(r["status"] == "failed" for r in rows), "no failed row in report.jsonl")
        before = snapshot(out)
        command(["mount", "-o", "remount,size=10m", str(out)], work)
        again = speechseq(*args, cwd=work)
        seen.ran(again)
        seen.note(f"{len(before)} done when full; re-run: exit {again.code}; {again.summary}")
        seen.expect(again.code == 0, f"the re-run exits {again.code}")
        done = len(transcripts(out))
        seen.expect(done == 20, f"{done} of 20 inputs done after the re-run")
        after = snapshot(out)
        changed = [name for name, mark in before.items() if after.get(name) != mark]
        seen.expect(not changed, f"{len(changed)} finished transcripts changed", "lost")
        seen.clean(out, "after the re-run")


@case("outputs", 'synthesize "Hi there." -o x.xyz', "exit 2, one error: naming x.xyz, no file")
def unknown_audio_format(work: Path, seen: Seen) -> None:
    ran = speechseq("synthesize", "Hi there.", "-o", "x.xyz", cwd=work)
    line = one_error(seen, ran, 2, "x.xyz")
    seen.expect(".~" not in line, "the error names a temporary file")
    seen.expect(not list(work.iterdir()), "files left: " + str([p.name for p in work.iterdir()]))


@case("outputs", 'synthesize "Hi there." -o hello (no extension)', "exit 0, a RIFF WAV")
def no_extension(work: Path, seen: Seen) -> None:
    ran = speechseq("synthesize", "Hi there.", "-o", "hello", *ONE_THREAD, cwd=work)
    seen.ran(ran)
    head = (work / "hello").read_bytes()[:4] if (work / "hello").exists() else b""
    seen.note(f"exit {ran.code}; starts {head!r}")
    seen.expect(ran.code == 0 and head == b"RIFF", "no RIFF WAV written")
    seen.clean(work)


@case(
    "outputs",
    "synthesize onto an existing file, no --overwrite",
    "exit 2, one error: naming it, file unchanged",
)
def synthesize_onto_a_file(work: Path, seen: Seen) -> None:
    kept = b"RIFF but really a precious recording\n"
    (work / "said.wav").write_bytes(kept)
    ran = speechseq("synthesize", "Hi there.", "-o", "said.wav", cwd=work)
    one_error(seen, ran, 2, "said.wav")
    seen.expect((work / "said.wav").read_bytes() == kept, "the file was overwritten", "lost")
    seen.clean(work)


@case(
    "outputs",
    "transcribe re-run into an output folder whose transcripts exist",
    "exit 0, inputs skipped, files unchanged",
)
def rerun_skips(work: Path, seen: Seen) -> None:
    copy_samples(work / "in", copies=1)
    args = ("transcribe", "in", "-o", "out", *QUICK)
    first = speechseq(*args, cwd=work)
    seen.ran(first)
    before = snapshot(work / "out")
    again = speechseq(*args, cwd=work)
    seen.ran(again)
    seen.note(f"exit {first.code} then {again.code}; {again.summary}")
    seen.expect(first.code == again.code == 0, "a run failed")
    seen.expect(" 5 skipped" in again.summary, "the re-run did not skip the 5 inputs")
    seen.expect(snapshot(work / "out") == before and len(before) == 5, "files changed", "lost")
    seen.clean(work / "out")


@case("outputs", "--report inside a folder that is a file", "exit 2, one error: naming it")
def report_under_a_file(work: Path, seen: Seen) -> None:
    (work / "afile").write_text("a file\n")
    ran = speechseq("transcribe", str(SAMPLE), "--report", "afile/r.jsonl", *QUICK, cwd=work)
    one_error(seen, ran, 2, "afile")


# ------------------------------------------------------------------------------------ models


def broken_checkpoints(folder: Path) -> None:
    """The checkpoints of the model cases, made with torch (imported here only)."""
    import torch

    torch.save({"format": "speechseq-asr", "x": Path("x")}, folder / "pickled.pt")
    torch.save({"format": "speechseq-asr"}, folder / "format-only.pt")
    shipped = torch.load(PRETRAINED / "asr-default.pt", weights_only=True)
    name, weight = next(iter(shipped["model"].items()))
    shipped["model"][name] = torch.zeros(*(size + 1 for size in weight.shape))
    torch.save(shipped, folder / "wrong-shapes.pt")


def model_refused(seen: Seen, ran: Ran, name: str) -> None:
    one_error(seen, ran, 2, name)
    seen.expect("weights_only" not in ran.out + ran.err, "weights_only advice")


def transcribe_with_model(work: Path, seen: Seen, model: str) -> None:
    ran = speechseq("transcribe", str(SAMPLE), "-m", model, *QUICK, cwd=work)
    model_refused(seen, ran, model)


@case("models", "--model missing path", "exit 2, one error: naming it")
def model_missing(work: Path, seen: Seen) -> None:
    transcribe_with_model(work, seen, "nomodel.pt")


@case("models", "--model a text file", "exit 2, one error: naming it")
def model_text(work: Path, seen: Seen) -> None:
    (work / "text.pt").write_text("not a model\n")
    transcribe_with_model(work, seen, "text.pt")


@case("models", "--model a checkpoint holding pickled code", "exit 2, one error: naming it")
def model_pickled(work: Path, seen: Seen) -> None:
    broken_checkpoints(work)
    transcribe_with_model(work, seen, "pickled.pt")


@case("models", "--model a dict holding only format", "exit 2, one error: naming it")
def model_format_only(work: Path, seen: Seen) -> None:
    broken_checkpoints(work)
    transcribe_with_model(work, seen, "format-only.pt")


@case("models", "--model the shipped model with one weight reshaped", "exit 2, one error: naming")
def model_wrong_shapes(work: Path, seen: Seen) -> None:
    broken_checkpoints(work)
    transcribe_with_model(work, seen, "wrong-shapes.pt")


@case("models", "transcribe -m the shipped TTS checkpoint", "exit 2, one error: naming it")
def model_tts_for_asr(work: Path, seen: Seen) -> None:
    transcribe_with_model(work, seen, str(PRETRAINED / "tts-default.pt"))


@case("models", "synthesize -m the shipped ASR checkpoint", "exit 2, one error: naming it")
def model_asr_for_tts(work: Path, seen: Seen) -> None:
    model = str(PRETRAINED / "asr-default.pt")
    ran = speechseq("synthesize", "Hi there.", "-o", "a.wav", "-m", model, cwd=work)
    model_refused(seen, ran, model)
    seen.expect(not (work / "a.wav").exists(), "a.wav written")


@case("models", "--lm a non-ARPA text file, --decoder beam", "exit 2, one error: naming it")
def lm_not_arpa(work: Path, seen: Seen) -> None:
    (work / "lm.txt").write_text("these are words, not an ARPA language model\n")
    ran = speechseq("transcribe", str(SAMPLE), "--lm", "lm.txt", "--decoder", "beam", cwd=work)
    model_refused(seen, ran, "lm.txt")


# -------------------------------------------------------------------------------------- text


@case("text", 'synthesize "###" -o a.wav (nothing to say)', "exit 2, one error:, no file")
def nothing_to_say(work: Path, seen: Seen) -> None:
    one_error(seen, speechseq("synthesize", "###", "-o", "a.wav", cwd=work), 2)
    seen.expect(not list(work.iterdir()), "files left: " + str([p.name for p in work.iterdir()]))


@case("text", "--text-file missing", "exit 2, one error: naming it")
def text_file_missing(work: Path, seen: Seen) -> None:
    ran = speechseq("synthesize", "--text-file", "missing.txt", "--output-dir", "o", cwd=work)
    one_error(seen, ran, 2, "missing.txt")


@case("text", "--text-file not UTF-8 (Latin-1)", "exit 2, one error: naming it")
def text_file_latin1(work: Path, seen: Seen) -> None:
    (work / "latin.txt").write_bytes("café olé\n".encode("latin-1"))
    ran = speechseq("synthesize", "--text-file", "latin.txt", "--output-dir", "o", cwd=work)
    one_error(seen, ran, 2, "latin.txt")


def peak_rss_mb(args: tuple[str, ...], cwd: Path, record: Path) -> tuple[Ran, float]:
    """Run ``speechseq ARGS`` and measure its peak RSS: /usr/bin/time where there is one, else
    the process's VmHWM read from /proc while it runs."""
    if Path("/usr/bin/time").exists():
        ran = speechseq(*args, cwd=cwd, prefix=("/usr/bin/time", "-f", "%M", "-o", str(record)))
        return ran, int(record.read_text().split()[-1]) / 1024
    proc, peak = start(*args, cwd=cwd), 0.0
    while proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(re.findall(r"VmHWM:\s+(\d+)", status)[0]) / 1024)
        time.sleep(0.05)
    return finish(proc), peak


@case(
    "text",
    "--text-file, one line of 600 sentences, peak RSS against 30 (/usr/bin/time)",
    "exit 0; peak RSS grows far less than the audio (under half its float32 size)",
)
def long_line_memory(work: Path, seen: Seen) -> None:
    peaks, audio = {}, {}
    for count in (30, 600):  # 600: about 18 minutes of audio, 60 MB as float32
        (work / f"s{count}.txt").write_text(" ".join(["The cat sat on the mat."] * count) + "\n")
        args = ("synthesize", "--text-file", f"s{count}.txt", "--output-dir", f"o{count}")
        args += ONE_THREAD
        began = time.monotonic()
        ran, peaks[count] = peak_rss_mb(args, work, work / f"rss-{count}")
        seen.note(f"{count}: {time.monotonic() - began:.0f} s")
        seen.ran(ran)
        seen.expect(ran.code == 0, f"{count} sentences: exit {ran.code}")
        wavs = list((work / f"o{count}").glob("*.wav"))
        audio[count] = sf.info(str(wavs[0])).frames * 4 / 2**20 if wavs else 0.0
    growth = peaks[600] - peaks[30]
    seen.note(
        f"peak {peaks[30]:.0f} MB (30) vs {peaks[600]:.0f} MB (600): growth {growth:+.0f} MB, "
        f"audio of 600 = {audio[600]:.1f} MB as float32"
    )
    seen.expect(audio[600] > 0 and growth < audio[600] / 2, "memory grows with the audio")
    seen.clean(work)


# ----------------------------------------------------------------------- training and config


@case("training", "train asr on a missing YAML", "exit 2, one error: naming it")
def config_missing(work: Path, seen: Seen) -> None:
    one_error(seen, speechseq("train", "asr", "nothere.yaml", cwd=work), 2, "nothere.yaml")


@case("training", "YAML with an unknown key (train.epochz)", "exit 2, one error: naming both")
def config_unknown_key(work: Path, seen: Seen) -> None:
    (work / "unknown.yaml").write_text("train:\n  epochz: 3\n")
    ran = speechseq("train", "asr", "unknown.yaml", cwd=work)
    one_error(seen, ran, 2, "unknown.yaml", "epochz")


@case("training", "YAML with a syntax error (an unclosed [)", "exit 2, one error: line naming it")
def config_syntax_error(work: Path, seen: Seen) -> None:
    (work / "broken.yaml").write_text("train:\n  epochs: [3\n")
    one_error(seen, speechseq("train", "asr", "broken.yaml", cwd=work), 2, "broken.yaml")


@case(
    "training",
    "manifest of 60 utterances whose audio files are all missing",
    "exit 2 before any step, one line with the count, no best.pt",
)
def audio_all_missing(work: Path, seen: Seen) -> None:
    rows = [
        {"audio": f"gone/utt-{i:03d}.wav", "text": "yes no", "duration": 1.0} for i in range(60)
    ]
    (work / "corpus").mkdir()
    (work / "corpus" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (work / "missing.yaml").write_text(
        "data:\n  train_manifest: corpus/train.jsonl\n"
        "model:\n  hidden_size: 16\n  num_layers: 1\n  conv_channels: 4\n"
        "train:\n  out_dir: run\n  epochs: 1\n  num_threads: 1\n"
    )
    ran = speechseq("train", "asr", "missing.yaml", "--no-progress", cwd=work)
    one_error(seen, ran, 2, "train.jsonl", "60 of 60")
    seen.expect(not (work / "run" / "best.pt").exists(), "a best.pt was written")
    if (work / "run").exists():
        seen.note(f"run/ holds {sorted(p.name for p in (work / 'run').iterdir())}")


def metric_faults(metrics: Path) -> list[str]:
    """What is wrong with a resumed run's metrics.jsonl: unreadable lines, a (step, kind) logged
    twice, training steps with gaps."""
    faults, rows = [], []
    for line in metrics.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            faults.append(f"unreadable line {line[:30]!r}")
    kinds = Counter((r.get("step"), "dev" if "dev_loss" in r else "train") for r in rows)
    twice = sorted(str(key) for key, n in kinds.items() if n > 1)
    if twice:
        faults.append(f"{len(twice)} steps logged twice, e.g. {twice[0]}")
    steps = [r["step"] for r in rows if "loss" in r]
    if steps != list(range(1, len(steps) + 1)):
        faults.append("training steps out of order or with gaps")
    return faults


@case(
    "training",
    "kill -9 a tiny training run (tiny recipe, hidden 16, 20 epochs, checkpoint every step) "
    "after 30 logged steps, then --resume",
    "the resume finishes, no .~*-tmp* left, metrics.jsonl logs each step once",
)
def killed_training(work: Path, seen: Seen) -> None:
    corpus = TINY_RECIPE.parents[1] / "data" / "train.jsonl"
    if not seen.expect(corpus.exists(), "no tiny corpus: run bash recipes/tiny/asr/prepare.sh"):
        return
    args = ("train", "asr", str(TINY_RECIPE), "train.out_dir=run", "train.epochs=20", *TINY_MODEL,
            "train.checkpoint_every=1", "train.log_every=1", "--no-progress")  # fmt: skip
    metrics = work / "run" / "metrics.jsonl"
    proc = start(*args, cwd=work)
    wait_for(lambda: metrics.exists() and len(metrics.read_bytes().splitlines()) >= 30, proc)
    proc.kill()
    killed = finish(proc)
    seen.expect(
        killed.code == -signal.SIGKILL, f"the run ended (exit {killed.code}) before the kill"
    )
    logged = len(metrics.read_bytes().splitlines()) if metrics.exists() else 0
    left = sorted(p.name for p in (work / "run").glob(".~*"))
    seen.note(f"the kill left {', '.join(left) or 'no temporary file'}")
    resumed = speechseq(*args, "--resume", cwd=work)
    seen.ran(resumed)
    seen.note(f"killed at {logged} metric lines; resumed: exit {resumed.code}")
    seen.expect(resumed.code == 0, f"the resume exits {resumed.code}: {resumed.err[-120:]!r}")
    seen.expect((work / "run" / "best.pt").exists(), "no best.pt after the resume")
    for fault in metric_faults(metrics) if metrics.exists() else ["no metrics.jsonl"]:
        seen.expect(False, fault)
    seen.clean(work / "run")


@case(
    "training",
    "README 'training from Python' snippet run from the repo root, its out_dir sent to the temp "
    "folder and the model shrunk (hidden 16, 1 layer) to save time",
    "it trains and returns best.pt",
)
def readme_snippet(work: Path, seen: Seen) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    code = next((block for block in blocks if "train_asr(" in block), "")
    if not seen.expect('"exp/python"' in code, "no snippet with out_dir exp/python in README"):
        return
    out = work / "exp-python"
    shrunk = ", ".join(f'"{key}": {value}' for key, value in (k.split("=") for k in TINY_MODEL))
    code = code.replace('"exp/python"', f"{str(out)!r}, {shrunk}") + "\nprint(best_checkpoint)\n"
    stray = REPO / "exp" / "python"
    made_here = not stray.exists()
    ran = command([sys.executable, "-c", code], REPO)
    seen.ran(ran)
    printed = ran.out.strip().splitlines()[-1:] or [""]
    seen.note(f"exit {ran.code}; returned {printed[0].replace(str(work), '…')}")
    seen.expect(ran.code == 0, f"exit {ran.code}: {ran.err[-120:]!r}")
    seen.expect(printed[0] == str(out / "best.pt") and (out / "best.pt").exists(), "no best.pt")
    seen.expect(not (made_here and stray.exists()), "it wrote exp/python into the repo")


# -------------------------------------------------------------------------------------- jobs


@case(
    "jobs",
    "kill -9 a folder job (60 inputs, --batch-seconds 10) once 10 transcripts exist, re-run",
    "re-run exit 0, every input transcribed, finished ones unchanged, no temp or lock left",
)
def killed_job(work: Path, seen: Seen) -> None:
    copy_samples(work / "in", copies=12)
    out = work / "out"
    args = ("transcribe", "in", "-o", "out", "--batch-seconds", "10", *QUICK)
    proc = start(*args, cwd=work)
    wait_for(lambda: len(transcripts(out)) >= 10, proc)
    proc.kill()  # the main process only, as `kill -9 PID` does; its reader worker follows
    killed = finish(proc)
    before = snapshot(out)
    seen.note(f"the kill left {len(leftovers(out))} temp/lock files")
    seen.expect(
        killed.code == -signal.SIGKILL, f"the job ended (exit {killed.code}) before the kill"
    )
    again = speechseq(*args, cwd=work)
    seen.ran(again)
    seen.note(f"killed with {len(before)} of 60 done; re-run: exit {again.code}; {again.summary}")
    seen.expect(again.code == 0, f"the re-run exits {again.code}")
    done = len(transcripts(out))
    seen.expect(done == 60, f"{done} of 60 inputs have a transcript")
    after = snapshot(out)
    changed = [name for name, mark in before.items() if after.get(name) != mark]
    seen.expect(not changed, f"{len(changed)} finished transcripts changed or gone", "lost")
    seen.clean(out)


@case(
    "jobs",
    "two transcribe jobs started at once on one folder (60 inputs, --batch-seconds 10) and one "
    "output folder",
    "each input ok once in the report, both summaries say 'left to another job', no lock left",
)
def two_jobs_at_once(work: Path, seen: Seen) -> None:
    copy_samples(work / "in", copies=12)
    out = work / "out"
    args = ("transcribe", "in", "-o", "out", "--batch-seconds", "10", *QUICK)
    runs = [finish(proc) for proc in [start(*args, cwd=work) for _ in range(2)]]
    for ran in runs:
        seen.ran(ran)
    seen.note(" / ".join(f"exit {r.code}: {r.summary}" for r in runs))
    seen.expect(all(r.code == 0 for r in runs), "a job failed")
    seen.expect(all("left to another job" in r.summary for r in runs), "a job shared nothing")
    ok = Counter(r["input"] for r in report_rows(out / "report.jsonl") if r["status"] == "ok")
    inputs = {str(p.relative_to(work)) for p in (work / "in").rglob("*.wav")}
    twice = [name for name, n in ok.items() if n > 1]
    seen.expect(not twice, f"{len(twice)} inputs done twice")
    seen.expect(set(ok) == inputs, f"{len(inputs - set(ok))} inputs never ok")
    seen.expect(len(transcripts(out)) == 60, f"{len(transcripts(out))} of 60 transcripts")
    seen.clean(out)


@case("jobs", "speechseq transcribe --help | cat", "plain text, < 100 lines, no box, all options")
def help_piped(work: Path, seen: Seen) -> None:
    ran = command(["bash", "-c", "speechseq transcribe --help | cat"], work)
    seen.ran(ran)
    lines = ran.out.splitlines()
    seen.note(f"exit {ran.code}; {len(lines)} lines")
    seen.expect(ran.code == 0 and "╭" not in ran.out, "box characters in piped help")
    seen.expect(len(lines) < 100, f"{len(lines)} lines")
    seen.expect("--max-words-per-line" in ran.out, "--max-words-per-line missing")


@case("jobs", "--shard 5/2", "exit 2, one error: naming 5/2")
def bad_shard(work: Path, seen: Seen) -> None:
    ran = speechseq("transcribe", str(SAMPLE), "--shard", "5/2", *QUICK, cwd=work)
    one_error(seen, ran, 2, "5/2")


# ------------------------------------------------------------------------------------ report


def run_case(number: int, case: Case, root: Path) -> tuple[int, Case, Seen]:
    """One case in a fresh folder; a fault of the matrix itself shows as ``wrong``."""
    work = root / f"{number:02d}-{case.check.__name__}"
    shutil.rmtree(work, ignore_errors=True)  # a --keep folder used before
    work.mkdir()
    seen = Seen()
    began = time.monotonic()
    try:
        case.check(work, seen)
    except Exception as err:  # the matrix's own bug: say so in the table, keep going
        traceback.print_exc()
        seen.expect(False, f"matrix error: {type(err).__name__}: {err}")
    took = time.monotonic() - began
    print(
        f"[{number:2d}/{len(CASES)}] {seen.verdict:9s} {took:5.1f} s  {case.name}", file=sys.stderr
    )
    return number, case, seen


def cell(text: str, root: Path, limit: int = 600) -> str:
    """Table-safe text: the temp root shortened, pipes escaped, one line, not too long."""
    text = text.replace(str(root), "$TMP").replace("|", "\\|").replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(results: list[tuple[int, Case, Seen]], root: Path) -> str:
    lines = ["| # | area | case | expected | seen | verdict |", "|---|---|---|---|---|---|"]
    for number, case, seen in results:
        name = f"{case.name} ({seen.adapted})" if seen.adapted else case.name
        fields = [str(number), case.area, name, case.expected, seen.text(), seen.verdict]
        lines.append("| " + " | ".join(cell(f, root) for f in fields) + " |")
    counts = Counter(seen.verdict for _, _, seen in results)
    totals = ", ".join(f"{v} {counts[v]}" for v in ("ok", "traceback", "wrong", "lost"))
    return "\n".join(lines) + f"\n\n{len(results)} cases: {totals}"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the speechseq fault matrix.")
    parser.add_argument("--keep", metavar="DIR", help="work under DIR and leave it in place")
    parser.add_argument("--only", metavar="N", type=int, nargs="+", help="run only these cases")
    return parser


def main() -> int:
    args = get_parser().parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="speechseq-faults-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    try:
        chosen = [(n, case) for n, case in enumerate(CASES, 1) if n in (args.only or [n])]
        results = [run_case(n, case, root) for n, case in chosen]
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(results, root))
    print(f"took {time.monotonic() - began:.0f} s", file=sys.stderr)
    return 0 if all(seen.verdict == "ok" for _, _, seen in results) else 1


if __name__ == "__main__":
    sys.exit(main())
