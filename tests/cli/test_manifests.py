"""The manifests of the field: a NeMo manifest (with offsets) and a Kaldi data directory (with
segments) transcribe and evaluate like the equivalent JSONL manifest of whole files."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from speechseq.cli import app
from speechseq.data import read_manifest

SAMPLES = Path(__file__).parents[2] / "data" / "samples"
NAMES = ["flite-rms", "festival-ked", "espeak-en-us-nyc-f4"]
GREEDY = ["--decoder", "greedy", "--threads", "2"]


@pytest.fixture
def three_forms(tmp_path):
    """The same three utterances as a JSONL manifest of files, and as segments of one recording
    (0.5 s of silence between them) listed by a NeMo manifest and by a Kaldi data directory."""
    rows, pieces, start = [], [], 0.0
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    segments, texts = [], []
    for name in NAMES:
        samples, rate = sf.read(SAMPLES / f"{name}.wav", dtype="int16")
        text = (SAMPLES / f"{name}.txt").read_text().strip()
        duration = len(samples) / rate
        rows.append({"audio": str(SAMPLES / f"{name}.wav"), "text": text, "duration": duration})
        segments.append(f"{name} talk {start} {start + duration}\n")
        texts.append(f"{name} {text}\n")
        pieces += [samples, np.zeros(rate // 2, dtype=np.int16)]
        start += duration + 0.5
    sf.write(tmp_path / "talk.wav", np.concatenate(pieces), 16000, subtype="PCM_16")
    jsonl = tmp_path / "files.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    nemo = tmp_path / "nemo.json"
    offsets = [float(line.split()[2]) for line in segments]
    nemo.write_text(
        "".join(
            json.dumps(
                {
                    "audio_filepath": "talk.wav",
                    "offset": o,
                    "duration": r["duration"],
                    "text": r["text"],
                }
            )
            + "\n"
            for o, r in zip(offsets, rows, strict=True)
        )
    )
    (kaldi / "wav.scp").write_text(f"talk {tmp_path / 'talk.wav'}\n")
    (kaldi / "segments").write_text("".join(segments))
    (kaldi / "text").write_text("".join(texts))
    return jsonl, nemo, kaldi


def test_nemo_and_kaldi_manifests_read_as_segments(three_forms):
    jsonl, nemo, kaldi = three_forms
    files, from_nemo, from_kaldi = (read_manifest(p) for p in three_forms)
    assert [u.text for u in from_nemo] == [u.text for u in from_kaldi] == [u.text for u in files]
    assert from_nemo[0].offset == 0.0 and from_nemo[1].offset == pytest.approx(
        files[0].duration + 0.5
    )
    assert [u.id for u in from_kaldi] == NAMES and all(u.offset is None for u in files)
    assert all(u.audio == str(jsonl.parent / "talk.wav") for u in from_nemo)


@pytest.mark.pretrained
def test_transcribe_and_evaluate_agree_across_the_three_forms(three_forms, tmp_path):
    texts, scores = [], []
    for form in three_forms:
        out = tmp_path / f"out-{form.name}"
        # torch for every form, as evaluate runs (a folder of short files would run without)
        args = ["transcribe", str(form), "-o", str(out), "--engine", "torch", *GREEDY]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        written = sorted(out.glob("*.txt"))
        assert len(written) == 3
        texts.append(sorted(p.read_text() for p in written))
        scored = CliRunner().invoke(app, ["evaluate", "default", str(form), *GREEDY])
        assert scored.exit_code == 0, scored.output
        scores.append(
            [line for line in scored.stdout.splitlines() if line.startswith(("WER", "CER"))]
        )
    assert texts[0] == texts[1] == texts[2] and all(t.strip() for t in texts[0])
    assert scores[0] == scores[1] == scores[2]
    kaldi_names = sorted(p.stem for p in (tmp_path / "out-kaldi").glob("*.txt"))
    assert kaldi_names == sorted(NAMES)  # a Kaldi segment's transcript is named by its id
