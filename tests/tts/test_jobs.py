"""Synthesis jobs: which text goes to which file, and what a re-run skips."""

import pytest

from speechseq.errors import SpeechseqError
from speechseq.tts.jobs import plan_synthesis


def test_lines_go_to_numbered_files_and_a_rerun_skips_those_written(tmp_path):
    text_file = tmp_path / "lines.txt"
    text_file.write_text("One.\n\nTwo.\n" + "x\n" * 9997 + "Last.\n")
    out = tmp_path / "out"
    plan = plan_synthesis(text_file=text_file, output_dir=out)
    assert plan.jobs[0] == ("One.", out / "00001.wav")  # 10,001 lines: five digits
    assert plan.jobs[1] == ("Two.", out / "00003.wav")  # blank line 2 is skipped
    assert plan.jobs[-1] == ("Last.", out / "10001.wav")
    out.mkdir()
    (out / "00001.wav").write_bytes(b"")
    again = plan_synthesis(text_file=text_file, output_dir=out)
    assert again.skipped == 1 and again.todo[0][1] == out / "00003.wav"
    assert len(plan_synthesis(text_file=text_file, output_dir=out, overwrite=True).todo) == len(
        plan.jobs
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "either TEXT"),
        ({"text": "hi", "text_file": "x.txt"}, "either TEXT"),
        ({"text": "hi"}, "give -o"),
        ({"text": "!!!", "output": "a.wav"}, "nothing to say"),
    ],
)
def test_bad_requests_are_one_clear_error(tmp_path, args, message):
    args = {k: tmp_path / v if k in ("output", "text_file") else v for k, v in args.items()}
    with pytest.raises(SpeechseqError, match=message):
        plan_synthesis(**args)


def test_one_text_never_overwrites_without_asking(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises(SpeechseqError, match="exists"):
        plan_synthesis("Hello.", tmp_path / "a.wav")
    assert plan_synthesis("Hello.", tmp_path / "a.wav", overwrite=True).todo
