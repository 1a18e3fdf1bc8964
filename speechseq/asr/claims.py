"""Lock files that let several jobs share one folder job's inputs.

Two ``speechseq transcribe`` runs over the same inputs and output folder (two terminals, SLURM
array tasks given the same part, a re-run started while the first still runs) would each do
every input. Instead, an input is claimed just before it is read, by creating its lock file
with ``O_EXCL`` (atomic, also on NFS v3+): ``OUT/a/.b.lock`` beside ``OUT/a/b.txt``. A job
skips an input another job holds, or whose transcripts appeared meanwhile, and removes its lock
once the input's transcripts are written or it failed.

A lock names its holder (host, process id, a token of the run, time). It is stale, and taken
over, when its process is gone (same host; a new process with a dead one's id has another
token), or when it is older than :data:`STALE_SECONDS` (for another host, whose processes cannot
be checked), so a job killed with ``kill -9`` never blocks a re-run. Two jobs
taking over one stale lock at the same moment may both do that input: work doubled, nothing
lost, as transcripts are written atomically.

Example:
    >>> claims = InputClaims([(Path("out/.a.lock"), (Path("out/a.txt"),))])
    >>> claims.claim(0)      # in whichever process reads the audio
    True
    >>> claims.release(0)    # once out/a.txt is written
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from speechseq.errors import SpeechseqError, os_cause

__all__ = ["LOCK_FAILED", "STALE_SECONDS", "InputClaims", "lock_path"]

# A lock from another host is taken over after this long. Transcribing runs at 60-200x real
# time on a CPU, so no input holds its lock for hours unless its job is gone.
STALE_SECONDS = 6 * 3600.0

# What a lock that cannot be written says (after its folder), so the job knows the input failed
# for want of a writable output folder, which stops the job, not for its audio.
LOCK_FAILED = "cannot write a lock file there"

_TOKENS: set[str] = set()  # the runs of this process (and of its parent, in a forked worker)


def lock_path(output: Path) -> Path:
    """The lock of the input whose first transcript is ``output``: ``OUT/a/b.txt`` →
    ``OUT/a/.b.lock`` (``b.wav.txt`` → ``.b.wav.lock``)."""
    return output.with_name(f".{output.stem}.lock")


class InputClaims:
    """The lock files of a job's inputs, claimed and released by index.

    Picklable, so DataLoader worker processes can claim inputs as they come to read them; every
    lock names ``owner`` (the job's main process), so a worker that exits does not make its
    claims look stale.

    Args:
        inputs: per input, its lock file and the transcripts it is to get.
        overwrite: claim inputs whose transcripts all exist (else they count as done).
    """

    def __init__(
        self, inputs: Sequence[tuple[Path, Sequence[Path]]], overwrite: bool = False
    ) -> None:
        self.inputs = [(Path(lock), tuple(outputs)) for lock, outputs in inputs]
        self.overwrite = overwrite
        self.owner = os.getpid()
        self.host = socket.gethostname()
        self.token = uuid.uuid4().hex
        _TOKENS.add(self.token)

    def claim(self, index: int) -> bool:
        """Take input ``index``'s lock; False when another live job holds it, or its
        transcripts exist (another job finished it) and overwriting was not asked for.

        Raises:
            SpeechseqError: the lock cannot be written (disk full, read-only folder).
        """
        lock, outputs = self.inputs[index]
        for _ in range(3):  # a stale lock removed: try again, but never loop for good
            if self._create(lock):
                if not self.overwrite and outputs and all(p.exists() for p in outputs):
                    self.release(index)  # done by another job since the plan was made
                    return False
                return True
            if not self._stale(lock):
                return False
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        return False

    def release(self, index: int) -> None:
        """Remove input ``index``'s lock if this job holds it."""
        lock = self.inputs[index][0]
        if self._holder(lock) == (self.host, self.owner, self.token):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    def release_all(self) -> None:
        """Remove every lock this job still holds (a job that stops early)."""
        for index in range(len(self.inputs)):
            self.release(index)

    def _create(self, lock: Path) -> bool:
        """Make ``lock`` with this job's record; False if it exists.

        Raises:
            SpeechseqError: it cannot be written (disk full, read-only); nothing is left.
        """
        record = {"host": self.host, "pid": self.owner, "run": self.token, "time": time.time()}
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as err:
            raise SpeechseqError(f"{lock.parent}: {LOCK_FAILED} ({os_cause(err)})") from None
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:  # an empty lock would hold the input for a minute: remove it
            lock.unlink(missing_ok=True)
            raise SpeechseqError(f"{lock.parent}: {LOCK_FAILED} ({os_cause(err)})") from None
        return True

    def _holder(self, lock: Path) -> tuple[str, int, str] | None:
        try:
            record = json.loads(lock.read_text())
            return str(record["host"]), int(record["pid"]), str(record["run"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):  # half-written: see _stale
            return ("", -1, "")

    def _stale(self, lock: Path) -> bool:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return True  # released meanwhile: free
        holder = self._holder(lock)
        if holder is None:
            return True
        host, pid, token = holder
        if not host:  # cut short by a kill while being written; give a live writer a moment
            return age > 60.0
        if host == self.host and (pid == self.owner and token not in _TOKENS or not _alive(pid)):
            return True
        return age > STALE_SECONDS  # another host's, or a process id taken by another program


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
