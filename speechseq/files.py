"""Files written whole or not at all: a temporary name in the same folder, then a rename.

Every file speechseq writes for a user (checkpoints, manifests, transcripts, audio, LMs,
duration tables) goes through :func:`atomic_path`, so a killed or failed run never leaves a
half-written file under the real name, and a re-run can trust what exists.

Example:
    >>> with atomic_path("out/model.pt") as tmp:
    ...     torch.save(state, tmp)            # out/model.pt appears only if this succeeds
    >>> write_text_atomic("out/a.txt", "hello\\n")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from speechseq.errors import SpeechseqError

__all__ = ["TEMP_GLOB", "atomic_path", "quiet_native_stderr", "write_text_atomic"]

TEMP_GLOB = ".~*-tmp*"  # what a temporary name looks like (a killed writer may leave one)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; on a clean exit it is renamed to
    ``path`` (replacing it), on an error it is removed. The parent folder is made if needed.

    The temporary name keeps ``path``'s suffix and adds none (``out.wav`` →
    ``.~out-PID-tmp.wav``, ``out`` → ``.~out-PID-tmp``), since writers such as soundfile choose
    the format from it. Errors name ``path``, never the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".~{path.stem}-{os.getpid()}-tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is not None and Path(err.filename).name == tmp.name:
            err.filename = str(path)
        raise
    except SpeechseqError as err:  # a writer's own message about the file it was given
        raise SpeechseqError(str(err).replace(str(tmp), str(path))) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what C++ writes to file descriptor 2 (KenLM's loading banner and progress bar,
    the ONNX exporter's shape-inference notes); failures still surface, as exceptions."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
