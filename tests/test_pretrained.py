"""The shipped recognizer: it is inside the package and transcribes the shipped samples."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speechseq.asr.decoding import DecoderConfig
from speechseq.checkpoint import load_recognizer
from speechseq.cli import app
from speechseq.errors import SpeechseqError
from speechseq.metrics import cer, wer
from speechseq.pretrained import char_recognizer_path, default_recognizer_path

SAMPLES = Path(__file__).parent.parent / "data" / "samples"
# Measured on the shipped model (speechseq/pretrained/asr-default.md): 21.3 % greedy, 23.9 %
# with the default decoder; a margin over it, so a broken export or feature mismatch (CER near
# 100 %) fails.
MAX_SAMPLES_CER = 0.35

pytestmark = pytest.mark.pretrained


def test_shipped_model_is_in_the_package_and_small():
    path = default_recognizer_path()
    assert path.parent.parent.name == "speechseq"
    assert path.stat().st_size < 50 * 2**20
    model, features, tokenizer, state = load_recognizer(path)
    assert "train_state" not in state
    assert features.sample_rate == 16000 and len(tokenizer) == 257  # 256 pieces and the blank


def test_shipped_character_recognizer_gives_the_tts_recipe_its_durations(tmp_path):
    """``asr-char.pt``, the character model the TTS recipe aligns with: every sample gets one
    duration per character, summing to the frames TTS training computes; the default (word
    piece) model is turned away with a reason."""
    from speechseq.data import read_manifest
    from speechseq.errors import SpeechseqError
    from speechseq.text import CharTokenizer
    from speechseq.tts.config import load_tts_config
    from speechseq.tts.durations import align_corpus, read_durations

    char_model = char_recognizer_path()
    assert char_model.parent == default_recognizer_path().parent
    assert char_model.stat().st_size < 50 * 2**20
    assert len(load_recognizer(char_model)[2]) == 29
    manifest = tmp_path / "samples.jsonl"
    made = CliRunner().invoke(app, ["data", "manifest", str(SAMPLES), "-o", str(manifest)])
    assert made.exit_code == 0, made.stderr
    tts = load_tts_config(SAMPLES.parent.parent / "recipes/synthetic/tts/hparams/duration.yaml")
    args = (tts.features, tts.data.trim_db, tts.data.trim_margin)
    summary = align_corpus(manifest, tmp_path / "d.jsonl", char_model, *args, progress=False)
    assert summary["written"] == 5
    durations = read_durations(tmp_path / "d.jsonl")  # checks each sums to its frames
    characters = {u.audio: len(CharTokenizer().encode(u.text)) for u in read_manifest(manifest)}
    assert {audio: len(d) for audio, d in durations.items()} == characters
    with pytest.raises(SpeechseqError, match="word pieces"):
        align_corpus(
            manifest, tmp_path / "p.jsonl", default_recognizer_path(), *args, progress=False
        )


def test_transcribe_samples_with_the_default_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # works from any directory
    result = CliRunner().invoke(app, ["transcribe", str(SAMPLES)])
    assert result.exit_code == 0, result.stderr
    got = dict(line.split("\t") for line in result.stdout.strip().splitlines())
    refs = {p.with_suffix(".wav").name: p.read_text().strip() for p in SAMPLES.glob("*.txt")}
    hyps = {Path(p).name: text for p, text in got.items()}
    assert set(hyps) == set(refs)
    names = sorted(refs)
    assert cer([refs[n] for n in names], [hyps[n] for n in names]) <= MAX_SAMPLES_CER


def test_evaluate_default_scores_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    made = runner.invoke(app, ["data", "manifest", str(SAMPLES), "-o", "samples.jsonl"])
    assert made.exit_code == 0, made.stderr
    args = ["evaluate", "default", "samples.jsonl", "--decoder", "greedy", "-o", "out.jsonl"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "utterances  5" in result.stdout
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    refs, hyps = [r["reference"] for r in rows], [r["hypothesis"] for r in rows]
    assert len(rows) == 5 and cer(refs, hyps) <= MAX_SAMPLES_CER


def _tuned_copy(tmp_path, lm_name="lm.arpa", **fields) -> Path:
    """A checkpoint path in ``tmp_path`` with a decoding JSON beside it (and its LM)."""
    (tmp_path / lm_name).write_text("\\data\\\n")
    body = {"kind": "beam", "beam_size": 40, "lm": lm_name, "lm_weight": 0.7, "word_bonus": 1.5}
    body.update(fields)
    (tmp_path / "model.decoding.json").write_text(json.dumps(body))
    return tmp_path / "model.pt"


def test_auto_decoding_is_the_checkpoints_own_tuning(tmp_path):
    from speechseq.asr.decoding import resolve_decoding, tuned_decoding

    tuned = tuned_decoding(_tuned_copy(tmp_path))
    shipped = resolve_decoding(None, tuned)
    assert shipped.kind == "beam" and shipped.lm == str(tmp_path / "lm.arpa")
    assert (shipped.lm_weight, shipped.word_bonus, shipped.beam_size) == (0.7, 1.5, 40)
    assert resolve_decoding(None, None).kind == "greedy"
    # an explicit choice wins; what the user leaves unset comes from the tuning
    assert resolve_decoding(DecoderConfig(kind="greedy"), tuned).kind == "greedy"
    own = resolve_decoding(DecoderConfig(kind="beam", lm_weight=0.2), tuned)
    assert own.lm == str(tmp_path / "lm.arpa") and (own.lm_weight, own.word_bonus) == (0.2, 1.5)
    assert own.beam_size == 40
    assert resolve_decoding(DecoderConfig(kind="auto", beam_size=5), tuned).beam_size == 5
    assert shipped.beam_tokens is None  # not in the file: the decoder's default
    tuned = tuned_decoding(_tuned_copy(tmp_path, beam_tokens=16))
    assert resolve_decoding(None, tuned).beam_tokens == 16
    assert resolve_decoding(DecoderConfig(kind="beam", beam_tokens=8), tuned).beam_tokens == 8
    other_lm = resolve_decoding(DecoderConfig(kind="auto", lm="mine.arpa"), None)
    assert other_lm.kind == "beam" and other_lm.lm == "mine.arpa" and other_lm.lm_weight is None


def test_the_tuned_no_speech_threshold_holds_for_every_decoder(tmp_path):
    from speechseq.asr.decoding import resolve_decoding, tuned_decoding

    tuned = tuned_decoding(_tuned_copy(tmp_path, no_speech_threshold=0.4))
    for kind in ("auto", "greedy", "beam"):
        assert resolve_decoding(DecoderConfig(kind=kind), tuned).no_speech_threshold == 0.4
    mine = DecoderConfig(kind="greedy", no_speech_threshold=0.9)
    assert resolve_decoding(mine, tuned).no_speech_threshold == 0.9
    off = resolve_decoding(DecoderConfig(kind="greedy"), None)
    assert off.no_speech_threshold is None and off.filled().no_speech_threshold == 1.0


def test_no_decoding_json_means_greedy(tmp_path):
    from speechseq.asr.decoding import resolve_decoding, tuned_decoding

    assert tuned_decoding(tmp_path / "model.pt") is None
    assert resolve_decoding(None, tuned_decoding(tmp_path / "model.pt")).kind == "greedy"


def test_a_bad_decoding_json_is_a_clear_error(tmp_path):
    from speechseq.asr.decoding import tuned_decoding

    (tmp_path / "model.decoding.json").write_text("[1, 2]")
    with pytest.raises(SpeechseqError, match="model.decoding.json"):
        tuned_decoding(tmp_path / "model.pt")


def test_a_copied_shipped_model_keeps_its_tuning_with_its_json(tmp_path):
    """The tuned decoder travels with the checkpoint: a copy beside a copy of its JSON decodes
    as the shipped file does; a copy alone decodes greedily."""
    import shutil

    from speechseq.asr.beam import BeamSearchDecoder
    from speechseq.asr.transcriber import Transcriber

    shipped = default_recognizer_path()
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(shipped, alone / "mine.pt")
    assert not isinstance(Transcriber.from_pretrained(alone / "mine.pt").decoder, BeamSearchDecoder)
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    shutil.copy(shipped, tuned / "mine.pt")
    json_text = shipped.with_suffix(".decoding.json").read_text()
    (tuned / "mine.decoding.json").write_text(
        json_text.replace('"lm-default.arpa"', json.dumps(str(shipped.parent / "lm-default.arpa")))
    )
    copy = Transcriber.from_pretrained(tuned / "mine.pt")
    assert isinstance(copy.decoder, BeamSearchDecoder)
    wavs = sorted(SAMPLES.glob("*.wav"))
    original = Transcriber.from_pretrained()
    assert [r.text for r in copy.transcribe(wavs)] == [r.text for r in original.transcribe(wavs)]


def test_shipped_decoder_loads_and_is_no_worse_than_greedy_on_the_samples():
    """If the package ships an LM and tuning, the default CLI path uses it and it loads."""
    from speechseq.asr.decoding import tuned_decoding
    from speechseq.asr.transcriber import Transcriber

    decoding = tuned_decoding(default_recognizer_path())
    assert decoding is not None, "the package ships asr-default.decoding.json"
    assert decoding.lm is not None and Path(decoding.lm).is_file()
    wavs = sorted(SAMPLES.glob("*.wav"))
    refs = [p.with_suffix(".txt").read_text().strip() for p in wavs]
    beam = Transcriber.from_pretrained()
    greedy = Transcriber.from_pretrained(decoding=DecoderConfig(kind="greedy"))
    # WER, which the LM weight is tuned for on dev: on these five files it is 26.5 % against
    # 41.2 % greedy, and on the 600 test utterances the LM lowers CER too. A broken LM or
    # tuning fails this.
    beam_wer = wer(refs, [r.text for r in beam.transcribe(wavs)])
    greedy_wer = wer(refs, [r.text for r in greedy.transcribe(wavs)])
    assert beam_wer < greedy_wer


# The shipped recognizer (greedy, int8) hears the shipped voice say these with CER 19 % (measured;
# the 8-epoch model shipped before it got 13 %, asr-char.pt, the character model, 21 %);
# a margin over it, so a broken export or a feature mismatch (CER near 100 %) fails.
MAX_VOICE_CER = 0.35
VOICE_SENTENCES = ["Hello world, this is speechseq.", "He asked me where I live."]


def test_shipped_voice_is_in_the_package_and_small():
    from speechseq.checkpoint import load_synthesizer
    from speechseq.pretrained import default_voice_path

    path = default_voice_path()
    assert path.parent.parent.name == "speechseq"
    assert path.stat().st_size < 50 * 2**20
    state = load_synthesizer(path)[-1]
    assert "train_state" not in state


def test_synthesize_with_the_shipped_voice_is_heard_back(tmp_path, monkeypatch):
    """`speechseq synthesize` with no --model, from any directory, writes speech that the shipped
    recognizer transcribes back to the text."""
    import soundfile

    from speechseq.asr.transcriber import Transcriber
    from speechseq.text import normalize_text

    monkeypatch.chdir(tmp_path)
    refs, hyps = [], []
    transcriber = Transcriber.from_pretrained(decoding=DecoderConfig(kind="greedy"))
    for i, sentence in enumerate(VOICE_SENTENCES):
        result = CliRunner().invoke(app, ["synthesize", sentence, "-o", f"{i}.wav"])
        assert result.exit_code == 0, result.stderr
        audio, rate = soundfile.read(tmp_path / f"{i}.wav")
        words = len(sentence.split())
        assert 0.15 * words < len(audio) / rate < 0.8 * words + 1.0
        refs.append(normalize_text(sentence))
        hyps.append(next(iter(transcriber.transcribe([tmp_path / f"{i}.wav"]))).text)
    assert cer(refs, hyps) <= MAX_VOICE_CER, hyps


def test_the_api_takes_one_path_or_audio_in_memory():
    import numpy as np
    import soundfile as sf
    import torch

    from speechseq.asr.transcriber import Transcriber

    transcriber = Transcriber.from_pretrained(decoding=DecoderConfig(kind="greedy"))
    wav = SAMPLES / "flite-rms.wav"
    (listed,) = transcriber.transcribe([wav])
    one = transcriber.transcribe(str(wav))  # one path: one result, not one per character
    assert one.path == str(wav) and one.text == listed.text and one.text
    samples, rate = sf.read(wav, dtype="float32")
    for audio in (samples, torch.from_numpy(np.stack([samples, samples], axis=1))):
        array = transcriber.transcribe(audio, sample_rate=rate)
        assert array.path == "<array>" and array.duration == pytest.approx(listed.duration)
        assert [(w.word, w.start, w.end) for w in array.words] == [
            (w.word, w.start, w.end) for w in listed.words
        ]
    with pytest.raises(SpeechseqError, match="sample_rate"):
        transcriber.transcribe(samples)
