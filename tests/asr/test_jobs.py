"""Folder jobs, long audio and timed output formats, end to end with the tiny fixture model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pysrt
import pytest
import soundfile as sf
import torch
import webvtt
from typer.testing import CliRunner

from speechseq.asr.alignment import forced_align_path, word_timings
from speechseq.asr.jobs import plan_job, run_job
from speechseq.asr.segmentation import split_at_pauses
from speechseq.asr.transcriber import Transcriber
from speechseq.audio import load_audio, stream_audio
from speechseq.cli import app
from speechseq.files import TEMP_GLOB

runner = CliRunner()


@pytest.fixture(scope="module")
def transcriber(model_path):
    return Transcriber.from_pretrained(model_path)


def _expected(speech_dir):
    return {p.with_suffix(".wav").name: p.read_text().strip() for p in speech_dir.glob("*.txt")}


def test_long_file_rejoins_pieces_with_absolute_times(transcriber, long_speech, tmp_path):
    path, spoken = long_speech
    (result,) = transcriber.transcribe([path], num_workers=1)
    assert result.ok and result.duration == pytest.approx(spoken[-1][2], abs=2.0)
    assert len(result.segments) >= 5 and result.text
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and all(w.end <= result.duration for w in result.words)
    # each piece transcribed on its own, shifted by where it starts, gives the same words
    rate = transcriber.sample_rate
    pieces = list(split_at_pauses(stream_audio(path, rate), rate, max_seconds=30.0))
    files = []
    for k, (_, piece) in enumerate(pieces):
        files.append(tmp_path / f"piece{k}.wav")
        sf.write(files[k], piece.numpy(), rate, subtype="FLOAT")
    alone = transcriber.transcribe(files)
    shifted = [
        (w.word, w.start + start / rate, w.end + start / rate)
        for (start, _), r in zip(pieces, alone, strict=True)
        for w in r.words
    ]
    got = [(w.word, w.start, w.end) for w in result.words]
    assert [g[0] for g in got] == [s[0] for s in shifted]
    assert torch.allclose(
        torch.tensor([g[1:] for g in got]), torch.tensor([s[1:] for s in shifted])
    )
    # and the words start on the speech, not in the pauses between utterances (the tiny model,
    # which only knows single utterances, spells badly across a long piece: allow some strays)
    slack = 2 * transcriber.frame_seconds  # a word starts up to a frame before its first one
    on_speech = [any(b - slack <= w.start <= e for _, b, e in spoken) for w in result.words]
    assert sum(on_speech) >= 0.9 * len(on_speech), sum(on_speech) / len(on_speech)


def test_interrupted_job_resumes_without_redoing_or_losing_work(transcriber, speech_dir, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(speech_dir, inputs / "a")
    shutil.copytree(speech_dir, inputs / "b" / "c")
    (inputs / "b" / "broken.wav").write_text("not audio")
    out, report = tmp_path / "out", tmp_path / "out" / "report.jsonl"
    plan = plan_job([inputs], out, ["txt", "srt"])
    assert len(plan.todo) == 9 and not plan.skipped

    done = []

    def stop_after_three(result):
        done.append(result)
        if len(done) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(transcriber, plan, report, on_result=stop_after_three)
    finished = {r.path for r in done if r.ok}
    written = {p.relative_to(out) for p in out.rglob("*.txt")}
    assert len(written) == len(finished) and 2 <= len(finished) <= 3
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.srt")}

    again = plan_job([inputs], out, ["txt", "srt"])
    assert {str(job.input) for job in again.skipped} == finished
    summary = run_job(transcriber, again, report)
    assert (summary.succeeded, summary.failed, summary.skipped) == (
        8 - len(finished),
        1,
        len(finished),
    )
    assert str(summary) == f"{8 - len(finished)} succeeded, 1 failed, {len(finished)} skipped"
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # nothing redone
    expected = _expected(speech_dir)
    for folder in ("a", "b/c"):
        for name, text in expected.items():
            assert (out / folder / name).with_suffix(".txt").read_text().strip() == text
            assert (out / folder / name).with_suffix(".srt").exists()
    assert not list(out.rglob(TEMP_GLOB))
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    runs = sorted({line["run"] for line in lines})
    assert len(runs) == 2 and len(lines) == len(done) + 9
    second = [line for line in lines if line["run"] == runs[-1]]
    assert sorted(line["input"] for line in second) == sorted(str(j.input) for j in plan.todo)
    status = {line["input"]: line for line in second}
    broken = status[str(inputs / "b" / "broken.wav")]
    assert broken["status"] == "failed" and "not readable as audio" in broken["error"]
    assert sum(line["status"] == "skipped" for line in second) == len(finished)
    ok = [line for line in second if line["status"] == "ok"]
    assert all(line["duration"] > 0.5 and line["seconds"] > 0 for line in ok)


def test_subtitles_load_and_match_the_forced_alignment(
    model_path, transcriber, speech_dir, tmp_path
):
    out = tmp_path / "out"
    args = ["transcribe", str(speech_dir), "-m", str(model_path), "-o", str(out)]
    args += ["-f", "srt", "-f", "vtt", "-f", "tsv", "--max-words-per-line", "1"]
    args += ["--max-line-count", "1", "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "4 succeeded, 0 failed, 0 skipped" in result.stderr
    frame = transcriber.frame_seconds
    for name, text in _expected(speech_dir).items():
        # the forced alignment of the reference text, computed here without the job machinery
        features = transcriber.extractor(load_audio(speech_dir / name, transcriber.sample_rate))
        log_probs, _ = transcriber.model(features[None], torch.tensor([len(features)]))
        path = forced_align_path(log_probs[0], transcriber.tokenizer.encode(text))
        aligned = word_timings(path, log_probs[0], transcriber.tokenizer, frame)
        srt = pysrt.open(str((out / name).with_suffix(".srt")))
        vtt = webvtt.read(str((out / name).with_suffix(".vtt"))).captions
        assert [s.text for s in srt] == [c.text for c in vtt] == text.split()
        for sub, cue, word in zip(srt, vtt, aligned, strict=True):
            assert abs(sub.start.ordinal / 1000 - word.start) <= frame
            assert abs(sub.end.ordinal / 1000 - word.end) <= frame
            assert abs(cue.start_in_seconds + _ms(cue.start) - word.start) <= frame
            assert abs(cue.end_in_seconds + _ms(cue.end) - word.end) <= frame
        tsv = (out / name).with_suffix(".tsv").read_text().splitlines()
        start, end, line = tsv[1].split("\t")
        assert tsv[0] == "start\tend\ttext" and line == text
        assert abs(int(start) / 1000 - aligned[0].start) <= frame


def _ms(stamp: str) -> float:
    """webvtt-py's *_in_seconds drop the milliseconds; add them back."""
    return int(stamp.rsplit(".", 1)[1]) / 1000


def test_cli_rerun_redoes_only_inputs_missing_a_format(model_path, speech_dir, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(speech_dir, folder)
    (folder / "broken.wav").write_text("not audio")
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    args = ["transcribe", str(folder), "-m", str(model_path), "-o", str(out), "-f", "json"]
    args += ["-f", "srt", "--report", str(report)]
    first = runner.invoke(app, args)
    assert first.exit_code == 1
    assert first.stderr.strip().splitlines()[-1] == "4 succeeded, 1 failed, 0 skipped"
    assert not (out / "report.jsonl").exists()  # --report given: the default is not used
    record = json.loads((out / "utt1.json").read_text())
    assert record["text"] == _expected(speech_dir)["utt1.wav"]
    assert [w["word"] for w in record["segments"][0]["words"]] == record["text"].split()
    (out / "utt1.json").unlink()  # as if killed between writing utt1's two files
    kept = (out / "utt1.srt").read_text() + "NOTE kept\n"  # the file that was written stays
    (out / "utt1.srt").write_text(kept)
    second = runner.invoke(app, args)
    assert second.exit_code == 1
    assert "1 succeeded, 1 failed, 3 skipped" in second.stderr.strip().splitlines()[-1]
    assert (out / "utt1.json").exists() and (out / "utt1.srt").read_text() == kept
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == 10
    assert sorted(line["status"] for line in lines[5:]) == ["failed", "ok"] + ["skipped"] * 3


def test_plan_keeps_extensions_apart_when_names_would_collide(tmp_path):
    """b.wav and b.flac side by side must not share OUT/b.txt (the second would overwrite the
    first, and a re-run would skip both); other files keep the plain stem."""
    import soundfile as sf

    from speechseq.errors import SpeechseqError

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    silence = np.zeros(1600)
    for name in ["sub/b.wav", "sub/b.flac", "c.wav"]:
        sf.write(src / name, silence, 16000)
    out = tmp_path / "out"
    names = {job.input.name: job.outputs for job in plan_job([src], out, ["txt", "srt"]).todo}
    assert names["b.wav"] == (out / "sub" / "b.wav.txt", out / "sub" / "b.wav.srt")
    assert names["b.flac"] == (out / "sub" / "b.flac.txt", out / "sub" / "b.flac.srt")
    assert names["c.wav"] == (out / "c.txt", out / "c.srt")
    # every shard names them alike, even one that holds only one of the pair
    parts = [plan_job([src], out, ["txt"], shard=(k, 3)).todo for k in range(3)]
    assert sorted(str(j.outputs[0]) for p in parts for j in p) == sorted(
        str(o[0]) for o in ([names[n][0]] for n in names)
    )
    (tmp_path / "other").mkdir()
    sf.write(tmp_path / "other" / "c.wav", silence, 16000)
    with pytest.raises(SpeechseqError, match="same transcript"):
        plan_job([src / "c.wav", tmp_path / "other" / "c.wav"], out)


def test_parts_are_balanced_by_size_and_cover_every_file_once(tmp_path):
    from speechseq.asr.shards import balanced_part

    sizes = [100_000, 10, 20, 30, 40, 50, 60, 70]  # one big file, like an hour-long recording
    files = []
    for i, size in enumerate(sizes):
        files.append(tmp_path / f"f{i}.wav")
        files[-1].write_bytes(b"x" * size)
    parts = [balanced_part(files, k, 2) for k in range(2)]
    assert sorted(f for p in parts for f in p) == sorted(files)  # a partition
    assert parts[0] == [files[0]]  # the big file alone; striding would have given it 3 more
    assert parts[1] == files[1:]  # in the original order
    with pytest.raises(ValueError):
        balanced_part(files, 2, 2)
