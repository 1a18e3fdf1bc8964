from dataclasses import replace

import pytest
import torch

from speechseq.audio import load_audio
from speechseq.data import read_manifest
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.tts.config import tts_feature_config
from speechseq.tts.vocoder import GriffinLimVocoder, Vocoder, mel_to_power


@pytest.fixture(scope="module")
def speech(tts_manifest) -> torch.Tensor:
    return load_audio(read_manifest(tts_manifest)[1].audio, 16000)


def _loud_log_mel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean |difference| of two (T, n_mels) log-mels over the target's loud cells, after
    removing a global gain (the vocoder normalises the peak)."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    loud = b > b.max() - 12
    offset = (a - b)[loud].median()
    return float((a - b - offset)[loud].abs().mean())


def test_griffin_lim_round_trip_of_a_real_mel(speech):
    config = tts_feature_config(16000, normalize="none")
    extractor = FeatureExtractor(config)
    mel = extractor(speech)  # (T, 80)
    vocoder = GriffinLimVocoder(config)
    waveform = vocoder(mel)
    assert waveform.shape == ((mel.shape[0] - 1) * config.hop_length,)
    assert waveform.abs().max() == pytest.approx(0.9, abs=1e-4)
    error = _loud_log_mel_error(extractor(waveform), mel)
    assert error < 0.6  # 0.25 measured; no phase recovery 2.3, mel off by one channel 1.3
    torch.testing.assert_close(vocoder(mel), waveform)  # deterministic


def test_globally_normalised_features_are_undone(speech):
    raw = tts_feature_config(16000, normalize="none")
    log_mel = FeatureExtractor(raw)(speech)
    config = raw.__class__(**{**raw.to_dict(), "normalize": "global"}).with_stats(
        log_mel.mean(0), log_mel.std(0)
    )
    normalised = FeatureExtractor(config)(speech)
    torch.testing.assert_close(
        mel_to_power(normalised, config), mel_to_power(log_mel, raw), rtol=1e-3, atol=1e-6
    )
    batch = torch.stack([normalised, normalised])  # (B, T, n_mels)
    out = GriffinLimVocoder(config, n_iter=4)(batch)
    assert out.shape == (2, (normalised.shape[0] - 1) * config.hop_length)


def test_non_negative_refinement_fits_the_mel_better(speech):
    config = tts_feature_config(16000, normalize="none")
    mel_power = mel_to_power(FeatureExtractor(config)(speech), config)  # (T, 80)

    def fit(iters: int) -> float:
        vocoder = GriffinLimVocoder(config, nnls_iters=iters)
        linear = vocoder.linear_power(mel_power)
        assert linear.min() >= 0
        return float(
            (torch.log(linear @ vocoder.fbank + 1e-6) - torch.log(mel_power + 1e-6)).abs().mean()
        )

    assert fit(10) < 0.8 * fit(0)


def test_per_utterance_normalisation_is_refused():
    with pytest.raises(ValueError, match="global or none"):
        GriffinLimVocoder(FeatureConfig())
    assert issubclass(GriffinLimVocoder, Vocoder)
    assert GriffinLimVocoder(replace(FeatureConfig(), normalize="none")).sample_rate == 16000
