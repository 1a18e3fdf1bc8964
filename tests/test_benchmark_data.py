"""The benchmark's sentence lists: the test sentences stay held out from the dev sentences that
candidates are chosen on."""

from pathlib import Path

import pytest

from speechseq.text import normalize_text

DATA = Path(__file__).parent.parent / "benchmarks" / "data"


def _lines(name: str) -> list[str]:
    text = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line for line in text if line.strip() and not line.startswith("#")]


def _runs(line: str, n: int = 6) -> set[tuple[str, ...]]:
    words = line.split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.parametrize("name", ["tts_sentences.txt", "tts_dev_sentences.txt"])
def test_lines_are_normalised_and_distinct(name):
    lines = _lines(name)
    assert lines and all(normalize_text(line) == line for line in lines)
    assert len(set(lines)) == len(lines)


def test_dev_sentences_share_nothing_with_the_test_sentences():
    test, dev = _lines("tts_sentences.txt"), _lines("tts_dev_sentences.txt")
    test_runs = set().union(*map(_runs, test))
    for line in dev:
        assert not _runs(line) & test_runs, line
        assert not any(line in t or t in line for t in test if len(t.split()) >= 4), line
