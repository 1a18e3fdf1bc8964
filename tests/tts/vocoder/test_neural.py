from dataclasses import replace

import pytest
import torch

from speechseq.checkpoint import export_checkpoint, load_synthesizer, vocoder_state
from speechseq.errors import SpeechseqError
from speechseq.models.vocoder import IstftVocoder, IstftVocoderConfig
from speechseq.tts.config import tts_feature_config
from speechseq.tts.vocoder import (
    GRIFFIN_LIM,
    GriffinLimVocoder,
    NeuralVocoder,
    choose_vocoder,
)

TINY = IstftVocoderConfig(dim=32, intermediate_dim=64, layers=2)


def _features(mean: float, std: float):
    return tts_feature_config(16000).with_stats(torch.full((80,), mean), torch.full((80,), std))


def test_features_of_another_normalisation_are_renormalised():
    """The voice's features (its statistics) give the audio of the same log-mels normalised as
    the vocoder's."""
    torch.manual_seed(0)
    model = IstftVocoder(TINY)
    own, voice = _features(-4.0, 2.0), _features(-6.0, 3.0)
    log_mel = torch.randn(20, 80) * 2 - 5
    as_own = NeuralVocoder(model, own)((log_mel + 4.0) / 2.0)
    as_voice = NeuralVocoder(model, own, voice)((log_mel + 6.0) / 3.0)
    torch.testing.assert_close(as_voice, as_own, atol=1e-5, rtol=1e-4)
    assert as_own.shape == (19 * 200,) and as_own.abs().max() <= 1.0
    batch = NeuralVocoder(model, own)(torch.stack([(log_mel + 4.0) / 2.0] * 2))
    assert batch.shape == (2, 19 * 200)


def test_other_mel_settings_are_refused():
    model = IstftVocoder(TINY)
    other = replace(_features(0.0, 1.0), f_max=7000.0)
    with pytest.raises(SpeechseqError, match="other mel settings"):
        NeuralVocoder(model, _features(0.0, 1.0), other)


def test_choose_vocoder(tmp_path):
    features = _features(0.0, 1.0)
    state = vocoder_state(IstftVocoder(TINY), features)
    path = tmp_path / "vocoder.pt"
    torch.save(state, path)
    assert isinstance(choose_vocoder(None, {}, features), GriffinLimVocoder)
    assert isinstance(choose_vocoder(GRIFFIN_LIM, {"vocoder": state}, features), GriffinLimVocoder)
    assert isinstance(choose_vocoder(None, {"vocoder": state}, features), NeuralVocoder)
    assert isinstance(choose_vocoder(path, {}, features), NeuralVocoder)
    with pytest.raises(SpeechseqError, match="no such model file"):
        choose_vocoder(tmp_path / "missing.pt", {}, features)


def test_a_voice_carries_its_vocoder(tts_model_path, vocoder_path, tmp_path):
    """export_checkpoint(vocoder=…): the copy holds the vocoder in float16 without its
    training state, and a Speaker on it speaks through the neural vocoder by default."""
    from speechseq.tts.speaker import Speaker

    out = export_checkpoint(tts_model_path, tmp_path / "voice.pt", vocoder=vocoder_path)
    state = load_synthesizer(out)[3]
    carried = state["vocoder"]
    assert carried["format"] == "speechseq-vocoder" and "train_state" not in carried
    assert all(v.dtype == torch.float16 for v in carried["model"].values() if v.is_floating_point())
    speaker = Speaker.from_pretrained(out, device="cpu")
    assert isinstance(speaker.vocoder, NeuralVocoder)
    waveform, rate = speaker.synthesize("yes no stop.")
    assert rate == 16000 and waveform.numel() > 0.3 * rate and waveform.abs().max() <= 1.0
    plain = Speaker.from_pretrained(out, device="cpu", vocoder=GRIFFIN_LIM)
    assert isinstance(plain.vocoder, GriffinLimVocoder)
    again = export_checkpoint(out, tmp_path / "again.pt")  # re-exporting keeps it
    assert "vocoder" in load_synthesizer(again)[3]
    with pytest.raises(SpeechseqError, match="only a voice carries a vocoder"):
        export_checkpoint(vocoder_path, tmp_path / "x.pt", vocoder=vocoder_path)
    with pytest.raises(SpeechseqError, match="not int8"):
        export_checkpoint(vocoder_path, tmp_path / "x.pt", precision="int8")
