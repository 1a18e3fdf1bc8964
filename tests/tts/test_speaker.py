import pytest
import torch
from conftest import TTS_SENTENCES

from speechseq import Speaker
from speechseq.data import TtsDataset, read_manifest
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor
from speechseq.pretrained import default_voice_path
from speechseq.tts.speaker import split_sentences


def test_split_sentences():
    assert split_sentences("Hello, world! It's 5 o'clock.") == ["hello world", "it's five o'clock"]
    assert split_sentences("One.\n\nTwo?  Three") == ["one", "two", "three"]
    assert split_sentences("  ... ### ") == [] and split_sentences("") == []
    long = "Alpha beta gamma, delta epsilon; zeta eta theta iota kappa."
    assert split_sentences(long, max_chars=20) == [
        "alpha beta gamma",
        "delta epsilon",
        "zeta eta theta iota",
        "kappa",
    ]
    assert all(len(s) <= 10 for s in split_sentences("a" * 5 + " b" * 40, max_chars=10))


def test_missing_shipped_voice_names_the_model_option(monkeypatch, tmp_path):
    monkeypatch.setattr("speechseq.pretrained.PRETRAINED_DIR", tmp_path)
    with pytest.raises(SpeechseqError, match="--model"):
        default_voice_path()


@pytest.fixture(scope="module")
def speaker(tts_model_path) -> Speaker:
    return Speaker.from_pretrained(tts_model_path)


def test_speaks_its_sentences_at_their_length(speaker, tts_manifest):
    """The overfit voice says each training sentence in about the time espeak-ng took (trimmed
    of silence), and stops by itself."""
    utts = read_manifest(tts_manifest)
    dataset = TtsDataset(utts, FeatureExtractor(speaker.feature_config), speaker.tokenizer)
    for i, utt in enumerate(utts):
        result = speaker.speak(utt.text)
        assert result.sentences == [utt.text] and result.stopped == [True]
        reference = dataset.waveform(i).numel() / speaker.sample_rate
        assert 0.75 * reference < result.duration < 1.3 * reference
        assert result.waveform.abs().max() <= 1.0


def _magnitude_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative difference of two waveforms' STFT magnitudes."""

    def spec(w):
        return torch.stft(w, 512, 128, window=torch.hann_window(512), return_complex=True).abs()

    return float((spec(a) - spec(b)).norm() / spec(b).norm())


def test_sentences_are_joined_with_a_pause_and_output_is_deterministic(speaker):
    text = f"{TTS_SENTENCES[0].capitalize()}. {TTS_SENTENCES[1]}!"
    result = speaker.speak(text)
    assert result.sentences == TTS_SENTENCES[:2] and len(result.stopped) == 2
    alone = [speaker.speak(s).waveform for s in TTS_SENTENCES[:2]]
    pause = round(speaker.pause_seconds * speaker.sample_rate)
    assert result.waveform.numel() == alone[0].numel() + pause + alone[1].numel()
    # The mels agree to ~1e-6 (batched matmuls round differently), but Griffin-Lim's phase
    # search turns that into sample differences of up to 0.04 (2.5 % of the signal's energy,
    # for some trained voices): compare what it keeps, the magnitude spectrogram.
    joined = result.waveform[: alone[0].numel()]
    assert _magnitude_error(joined, alone[0]) < 0.02
    assert result.waveform[alone[0].numel() : alone[0].numel() + pause].abs().max() == 0
    waveform, rate = speaker.synthesize(text)
    assert rate == 16000
    torch.testing.assert_close(waveform, result.waveform)


def test_unspeakable_text_is_an_error(speaker):
    for text in ("", "   ", "### -- ..."):
        with pytest.raises(SpeechseqError, match="nothing to say"):
            speaker.synthesize(text)


def test_speak_to_file_streams_what_speak_says(speaker, tmp_path, monkeypatch):
    """A long text is written a batch of sentences at a time: the first sentence is in hand
    after one batch, and the file holds exactly what speak() returns."""
    import soundfile as sf

    from speechseq.audio import save_audio

    text = ". ".join(TTS_SENTENCES * 3)  # batches of 2 sentences
    monkeypatch.setattr(speaker, "max_batch", 2)
    batches = []
    real_infer = speaker.model.infer
    monkeypatch.setattr(
        speaker.model, "infer", lambda *a, **k: batches.append(1) or real_infer(*a, **k)
    )
    stream = speaker.stream(text)
    next(stream)
    assert len(batches) == 1  # the rest is not made yet
    stream.close()
    whole = speaker.speak(text)
    sentences = []
    written = speaker.speak_to_file(
        text, tmp_path / "long.wav", on_sentence=lambda: sentences.append(1)
    )
    assert written.stopped == whole.stopped and written.samples == whole.waveform.numel()
    assert written.duration == whole.duration and written.waveform.numel() == 0
    save_audio(tmp_path / "whole.wav", whole.waveform, whole.sample_rate)
    got, want = sf.read(tmp_path / "long.wav"), sf.read(tmp_path / "whole.wav")
    assert got[1] == want[1] and (got[0] == want[0]).all()
    assert len(sentences) == len(whole.sentences) == 3 * len(TTS_SENTENCES)  # once each


def test_an_abbreviation_ends_no_sentence():
    assert split_sentences("Dr. Smith met Mr. Jones at 10:30. It cost $5!") == [
        "doctor smith met mister jones at ten thirty",
        "it cost five dollars",
    ]
