import pytest
import torch

from speechseq.models.tts_layers import Postnet, TextEncoder, check_tts_shape


def test_text_encoder_shapes_and_zero_padding():
    encoder = TextEncoder(vocab_size=29, embedding_dim=16, channels=24, conv_layers=2).eval()
    tokens = torch.randint(1, 29, (3, 10))
    lengths = torch.tensor([10, 7, 4])
    for i, n in enumerate(lengths.tolist()):
        tokens[i, n:] = 0
    memory = encoder(tokens, lengths)
    assert memory.shape == (3, 10, 24)
    assert memory[1, 7:].abs().sum() == 0 and memory[2, 4:].abs().sum() == 0


def test_text_encoder_encodes_an_utterance_the_same_in_any_batch():
    torch.manual_seed(0)
    encoder = TextEncoder(vocab_size=29, embedding_dim=16, channels=24, conv_layers=3).eval()
    short = torch.randint(1, 29, (1, 6))
    alone = encoder(short, torch.tensor([6]))
    batch = torch.zeros(2, 15, dtype=torch.long)
    batch[0] = torch.randint(1, 29, (15,))
    batch[1, :6] = short[0]
    together = encoder(batch, torch.tensor([15, 6]))
    torch.testing.assert_close(together[1, :6], alone[0], rtol=1e-5, atol=1e-6)


def test_postnet_maps_mels_to_a_residual_of_the_same_shape():
    postnet = Postnet(n_mels=20, channels=8, layers=3).eval()
    mel = torch.randn(2, 30, 20)
    assert postnet(mel).shape == mel.shape
    # each frame only sees its neighbours: 3 layers of width 5 reach 6 frames each side
    changed = mel.clone()
    changed[:, -1] += 1.0
    delta = (postnet(changed) - postnet(mel)).abs().sum(dim=(0, 2))
    assert delta[:-7].max() == 0 and delta[-1] > 0


@pytest.mark.parametrize(
    "shape", [(0, 256, 5), (2, 255, 5), (2, 256, 1)], ids=["r", "channels", "postnet"]
)
def test_check_tts_shape_rejects_impossible_sizes(shape):
    with pytest.raises(ValueError):
        check_tts_shape(*shape)
    check_tts_shape(2, 256, 5)
