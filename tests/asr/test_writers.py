"""Tests for speechseq.asr.writers: timestamps, cue layout and each format, read back by parsers."""

from __future__ import annotations

import json

import pysrt
import pytest
import webvtt

from speechseq.asr.alignment import Word, make_segment
from speechseq.asr.transcriber import TranscriptionResult
from speechseq.asr.writers import SubtitleOptions, format_timestamp, render, subtitle_cues


def _result() -> TranscriptionResult:
    first = [
        Word(w, 0.5 * i, 0.5 * i + 0.3, 0.9) for i, w in enumerate("one two three four".split())
    ]
    second = [Word("five", 3725.25, 3725.6, 0.5), Word("six", 3726.0, 3726.4, 0.75)]
    segments = [make_segment(first), make_segment(second)]
    return TranscriptionResult(
        "talk.wav", text="one two three four five six", duration=3727.0, segments=segments
    )


@pytest.mark.parametrize(
    ("seconds", "marker", "expected"),
    [
        (0.0, ".", "00:00:00.000"),
        (1.2344, ",", "00:00:01,234"),
        (3725.2506, ".", "01:02:05.251"),
        (59.9996, ".", "00:01:00.000"),
        (-0.01, ".", "00:00:00.000"),
    ],
)
def test_format_timestamp(seconds, marker, expected):
    assert format_timestamp(seconds, marker) == expected


def test_cues_keep_segments_apart_and_obey_the_limits():
    segments = _result().segments
    assert [c.text for c in subtitle_cues(segments)] == ["one two three four", "five six"]
    cues = subtitle_cues(segments, SubtitleOptions(max_line_width=8, max_line_count=1))
    assert [c.text for c in cues] == ["one two", "three", "four", "five six"]
    assert (cues[0].start, cues[0].end) == (0.0, 0.8)
    cues = subtitle_cues(segments, SubtitleOptions(max_words_per_line=1, max_line_count=2))
    assert [c.text for c in cues] == ["one\ntwo", "three\nfour", "five\nsix"]
    cues = subtitle_cues(segments, SubtitleOptions(max_gap=0.3))
    assert [c.text for c in cues] == ["one two three four", "five", "six"]


def test_srt_and_vtt_load_in_subtitle_parsers(tmp_path):
    result = _result()
    options = SubtitleOptions(max_words_per_line=1, max_line_count=1)
    srt_path, vtt_path = tmp_path / "a.srt", tmp_path / "a.vtt"
    srt_path.write_text(render(result, "srt", options))
    vtt_path.write_text(render(result, "vtt", options))
    subs = pysrt.open(str(srt_path))
    vtt = webvtt.read(str(vtt_path)).captions
    words = result.words
    assert [s.index for s in subs] == list(range(1, len(words) + 1))
    assert [s.text for s in subs] == [c.text for c in vtt] == [w.word for w in words]
    for sub, cue, word in zip(subs, vtt, words, strict=True):
        assert sub.start.ordinal / 1000 == pytest.approx(word.start, abs=5e-4)
        assert sub.end.ordinal / 1000 == pytest.approx(word.end, abs=5e-4)
        assert _vtt_seconds(cue.start) == pytest.approx(word.start, abs=5e-4)
        assert _vtt_seconds(cue.end) == pytest.approx(word.end, abs=5e-4)
    assert "01:02:05,250 --> 01:02:05,600" in srt_path.read_text()


def _vtt_seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return 3600 * int(h) + 60 * int(m) + float(s)


def test_txt_tsv_and_json():
    result = _result()
    assert render(result, "txt") == "one two three four\nfive six\n"
    assert render(result, "tsv").splitlines() == [
        "start\tend\ttext",
        "0\t1800\tone two three four",
        "3725250\t3726400\tfive six",
    ]
    record = json.loads(render(result, "json"))
    assert record["text"] == result.text and record["duration"] == 3727.0
    assert [s["id"] for s in record["segments"]] == [0, 1]
    assert record["segments"][1]["words"][0] == {
        "word": "five",
        "start": 3725.25,
        "end": 3725.6,
        "probability": 0.5,
    }


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        render(_result(), "docx")
