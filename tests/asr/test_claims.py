"""Tests for speechseq.asr.claims: lock files that let concurrent jobs share inputs."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import time

from speechseq.asr.claims import STALE_SECONDS, InputClaims, lock_path


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _lock(path, host=None, pid=None, age=0.0):
    path.write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid, "run": "x"}))
    then = time.time() - age
    os.utime(path, (then, then))


def test_lock_path_sits_hidden_beside_the_first_transcript(tmp_path):
    assert lock_path(tmp_path / "a" / "b.txt") == tmp_path / "a" / ".b.lock"
    assert lock_path(tmp_path / "b.wav.srt") == tmp_path / ".b.wav.lock"


def test_one_job_holds_an_input_until_it_releases_it(tmp_path):
    lock = tmp_path / "out" / ".a.lock"
    first = InputClaims([(lock, [tmp_path / "out" / "a.txt"])])
    second = InputClaims([(lock, [tmp_path / "out" / "a.txt"])])
    assert first.claim(0) and lock.exists()
    assert not second.claim(0)
    second.release(0)  # not its lock: it stays
    assert lock.exists()
    first.release(0)
    assert not lock.exists() and second.claim(0)


def test_a_finished_input_is_not_claimed_again(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("done by another job")
    claims = InputClaims([(tmp_path / ".a.lock", [out])])
    assert not claims.claim(0) and not (tmp_path / ".a.lock").exists()
    assert InputClaims([(tmp_path / ".a.lock", [out])], overwrite=True).claim(0)


def test_a_killed_jobs_lock_is_taken_over(tmp_path):
    lock = tmp_path / ".a.lock"
    _lock(lock, pid=_dead_pid())
    assert InputClaims([(lock, [])]).claim(0)
    assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_a_live_jobs_lock_is_respected_and_a_reused_pid_is_not_mistaken(tmp_path):
    lock = tmp_path / ".a.lock"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        _lock(lock, pid=other.pid)
        assert not InputClaims([(lock, [])]).claim(0)
        other.kill()
    # this process's own pid, but another run's token: a dead job whose pid was reused
    _lock(lock, pid=os.getpid())
    assert InputClaims([(lock, [])]).claim(0)


def test_another_hosts_lock_is_stale_only_when_old(tmp_path):
    lock = tmp_path / ".a.lock"
    _lock(lock, host="elsewhere", pid=1, age=60)
    assert not InputClaims([(lock, [])]).claim(0)
    _lock(lock, host="elsewhere", pid=1, age=STALE_SECONDS + 60)
    assert InputClaims([(lock, [])]).claim(0)


def test_release_all_removes_only_this_jobs_locks_and_claims_pickle(tmp_path):
    locks = [tmp_path / f".{name}.lock" for name in "abc"]
    mine = InputClaims([(lock, []) for lock in locks])
    theirs = InputClaims([(lock, []) for lock in locks])
    copy = pickle.loads(pickle.dumps(mine))  # as a DataLoader worker gets it
    assert copy.claim(0) and theirs.claim(1) and mine.claim(2)
    mine.release_all()
    assert [lock.exists() for lock in locks] == [False, True, False]


def test_a_lock_that_cannot_be_written_is_an_error_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import pytest

    from speechseq.asr.claims import LOCK_FAILED
    from speechseq.errors import SpeechseqError

    lock = tmp_path / ".a.lock"

    def full(fd, *args, **kwargs):  # the file is made, then its first write fails
        os.close(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", full)
    with pytest.raises(SpeechseqError, match=f"{LOCK_FAILED} \\(no space left on device\\)"):
        InputClaims([(lock, [])]).claim(0)
    assert not lock.exists()  # an empty lock would hold the input from a re-run
