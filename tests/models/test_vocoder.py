import pytest
import torch

from speechseq.models import MODELS, VOCODER_KINDS, build_model, config_from_dict
from speechseq.models.vocoder import IstftVocoder, IstftVocoderConfig

TINY = IstftVocoderConfig(dim=32, intermediate_dim=64, layers=2)


def test_shapes_frame_for_frame():
    model = IstftVocoder(TINY)
    waveform, log_magnitude, phase = model(torch.randn(3, 25, 80))  # (B, T, n_mels)
    assert waveform.shape == (3, 24 * 200)  # centred frames: T frames span (T - 1) hops
    assert log_magnitude.shape == phase.shape == (3, 401, 25)
    assert model.infer(torch.randn(1, 7, 80)).shape == (1, 6 * 200)


def test_the_head_is_an_exact_stft_inverse():
    """Given a recording's own STFT magnitude and phase, the synthesis gives the recording."""
    model = IstftVocoder(TINY)
    torch.manual_seed(0)
    waveform = torch.randn(1, 40 * 200) * 0.1
    spec = torch.stft(
        waveform, 800, 200, 800, torch.hann_window(800), center=True, return_complex=True
    )  # (1, 401, 41)
    out = model.synthesize(spec.abs().clamp(min=1e-9).log(), spec.angle())
    torch.testing.assert_close(out, waveform, atol=1e-5, rtol=0)


def test_each_frame_sees_a_bounded_context():
    """Convolutions only: a change at one frame moves the output near it, not far away."""
    torch.manual_seed(0)
    model = IstftVocoder(TINY).eval()
    x = torch.randn(1, 60, 80)
    y = x.clone()
    y[0, 5] += 1.0
    a, b = model.infer(x), model.infer(y)
    # frames each side: the embedding and each block's convolution, + the window's overlap
    reach = (TINY.kernel_size // 2) * (TINY.layers + 1) + 2
    near = (a[0, : 5 * 200] - b[0, : 5 * 200]).abs().max()
    far = (a[0, (5 + reach) * 200 :] - b[0, (5 + reach) * 200 :]).abs().max()
    assert far < 1e-4 * near  # rounding alone out there (the FFTs batch differently)


def test_registered_and_rebuilt_from_its_dict():
    assert MODELS["istft"] == (IstftVocoder, IstftVocoderConfig) and VOCODER_KINDS == ("istft",)
    config = config_from_dict(TINY.to_dict())
    assert config == TINY and isinstance(build_model(config), IstftVocoder)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="odd"):
        IstftVocoderConfig(kernel_size=4)
    with pytest.raises(ValueError, match="hop_length"):
        IstftVocoderConfig(n_fft=100, hop_length=200)
