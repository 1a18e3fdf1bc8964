"""Files written whole or not at all."""

import pytest

from speechseq.files import atomic_path, write_text_atomic


def test_a_file_appears_only_when_written_whole(tmp_path):
    path = tmp_path / "sub" / "out.wav"
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".wav"  # writers pick formats by it
        tmp.write_bytes(b"new")
        assert not path.exists()
    assert path.read_bytes() == b"new"
    assert list(path.parent.iterdir()) == [path]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "out.txt", "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]
