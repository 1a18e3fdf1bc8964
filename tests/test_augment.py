import pytest
import torch

from speechseq.audio import load_audio
from speechseq.augment import (
    AugmentConfig,
    WaveformAugmenter,
    colored_noise,
    item_generator,
    room_impulse_response,
)

OFF = AugmentConfig(speed_prob=0, noise_prob=0, reverb_prob=0, gain_db=0)


@pytest.fixture(scope="module")
def speech(speech_dir):
    return load_audio(speech_dir / "utt0.wav", 16000)


def test_same_seed_epoch_index_gives_same_audio(speech):
    augmenter = WaveformAugmenter(AugmentConfig(speed_prob=1, noise_prob=1, reverb_prob=1), 16000)
    a = augmenter(speech, item_generator(0, 3, 7))
    b = augmenter(speech, item_generator(0, 3, 7))
    c = augmenter(speech, item_generator(0, 4, 7))
    assert torch.equal(a, b)
    assert a.shape != c.shape or not torch.equal(a, c)


def test_all_off_is_identity(speech):
    out = WaveformAugmenter(OFF, 16000)(speech, item_generator(0, 0, 0))
    assert torch.equal(out, speech)


@pytest.mark.parametrize("factor", [0.85, 1.1])
def test_speed_changes_duration_by_the_factor(speech, factor):
    out = WaveformAugmenter(OFF, 16000).speed(speech, factor)
    assert out.numel() == pytest.approx(speech.numel() / factor, rel=0.01)


@pytest.mark.parametrize("snr", [5.0, 20.0])
def test_noise_is_added_at_the_requested_snr(speech, snr):
    out = WaveformAugmenter(OFF, 16000).add_noise(speech, snr, torch.Generator().manual_seed(1))
    noise = out - speech
    measured = 10 * torch.log10(speech.square().mean() / noise.square().mean())
    assert float(measured) == pytest.approx(snr, abs=0.1)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_colored_noise_has_unit_rms_and_the_right_tilt(exponent):
    noise = colored_noise(32000, exponent, torch.Generator().manual_seed(0))
    assert float(noise.square().mean()) == pytest.approx(1.0, rel=1e-3)
    power = torch.fft.rfft(noise).abs().square()
    low, high = power[100:1000].mean(), power[10000:15000].mean()
    assert (low / high > 5) == (exponent > 0)


def test_reverb_keeps_length_and_peak_and_decays(speech):
    g = torch.Generator().manual_seed(0)
    rir = room_impulse_response(16000, 0.5, g)
    assert rir[0] == 1.0 and rir.numel() == 8000
    early, late = rir[100:1000].abs().mean(), rir[-1000:].abs().mean()
    assert late < early / 20  # 60 dB over rt60: the last tenth is far quieter
    out = WaveformAugmenter(OFF, 16000).reverberate(speech, 0.5, g)
    assert out.shape == speech.shape
    assert float(out.abs().max()) == pytest.approx(float(speech.abs().max()), rel=1e-5)


def test_output_never_clips(speech):
    config = AugmentConfig(speed_prob=1, noise_prob=1, snr_low=0, snr_high=0, gain_db=20)
    augmenter = WaveformAugmenter(config, 16000)
    for i in range(10):
        out = augmenter(speech, item_generator(1, 0, i))
        assert float(out.abs().max()) <= 1.0 + 1e-6
        assert torch.isfinite(out).all()


def test_vtlp_warp_factor_is_drawn_in_range_and_only_when_on():
    off = WaveformAugmenter(OFF, 16000)
    g = item_generator(0, 0, 0)
    state = g.get_state()
    assert off.warp_factor(g) == 1.0 and torch.equal(g.get_state(), state)  # drew nothing
    on = WaveformAugmenter(AugmentConfig(vtlp_prob=1.0, vtlp_low=0.9, vtlp_high=1.1), 16000)
    factors = [on.warp_factor(item_generator(0, 0, i)) for i in range(50)]
    assert all(0.9 <= f <= 1.1 for f in factors) and len(set(factors)) == 50
    assert factors == [on.warp_factor(item_generator(0, 0, i)) for i in range(50)]


def test_dataset_applies_the_warp_to_features(speech_dir):
    from speechseq.data import AsrDataset, Utterance
    from speechseq.features import FeatureConfig, FeatureExtractor
    from speechseq.text import CharTokenizer

    utts = [Utterance(str(speech_dir / "utt0.wav"), "a", 1.0)]
    extractor, tokenizer = FeatureExtractor(FeatureConfig()), CharTokenizer()
    plain = AsrDataset(utts, extractor, tokenizer, WaveformAugmenter(OFF, 16000))[0]
    warped_config = AugmentConfig(
        speed_prob=0, noise_prob=0, reverb_prob=0, gain_db=0, vtlp_prob=1.0
    )
    warped = AsrDataset(utts, extractor, tokenizer, WaveformAugmenter(warped_config, 16000))
    first, again = warped[0], warped[0]
    assert plain is not None and first is not None and again is not None
    assert first["features"].shape == plain["features"].shape
    assert not torch.allclose(first["features"], plain["features"])
    assert torch.equal(first["features"], again["features"])  # a function of (seed, epoch, index)
