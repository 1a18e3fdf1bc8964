import pytest
import torch

from speechseq.asr.decoding import greedy_decode
from speechseq.audio import load_audio
from speechseq.data import read_manifest
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.text import CharTokenizer, train_piece_tokenizer


def test_shapes_subsampling_4():
    model = Recognizer(RecognizerConfig(vocab_size=29, hidden_size=16, num_layers=2))
    log_probs, lengths = model(torch.randn(3, 301, 80), torch.tensor([301, 200, 17]))
    assert log_probs.shape == (3, 76, 29)
    assert lengths.tolist() == [76, 50, 5]
    # log-softmax: each frame's probabilities sum to one
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 76))


def test_shapes_subsampling_2_and_other_mels():
    model = Recognizer(RecognizerConfig(vocab_size=10, n_mels=40, subsampling=2, hidden_size=8))
    log_probs, lengths = model(torch.randn(2, 100, 40), torch.tensor([100, 51]))
    assert log_probs.shape == (2, 50, 10)
    assert lengths.tolist() == [50, 26]


@pytest.mark.parametrize("subsampling", [2, 4, 6])
def test_output_lengths_match_the_frames_the_front_end_makes(subsampling):
    """Every input length, alone in its batch, gives as many frames as ``output_lengths`` says,
    and padding it in a batch leaves that count as its valid length."""
    model = Recognizer(
        RecognizerConfig(
            vocab_size=7,
            n_mels=20,
            subsampling=subsampling,
            conv_channels=4,
            hidden_size=4,
            num_layers=1,
        )
    ).eval()
    n = torch.arange(1, 3 * subsampling + 2)  # every remainder, at least twice
    with torch.no_grad():
        alone = [model(torch.randn(1, int(t), 20), t.view(1))[0].shape[1] for t in n]
        log_probs, lengths = model(torch.randn(len(n), int(n.max()), 20), n)
    assert model.output_lengths(n).tolist() == alone == lengths.tolist()
    # the first convolution always halves time, so 6 is 2 then 3
    assert model.frontend.strides == {2: (2, 1), 4: (2, 2), 6: (2, 3)}[subsampling]
    assert log_probs.shape[1] == max(alone) == -(-int(n.max()) // subsampling)


def test_padding_does_not_change_outputs():
    torch.manual_seed(0)
    model = Recognizer(RecognizerConfig(hidden_size=16, num_layers=2)).eval()
    x = torch.randn(1, 120, 80)
    alone, _ = model(x, torch.tensor([120]))
    padded, _ = model(torch.cat([x, torch.zeros(1, 80, 80)], dim=1), torch.tensor([120]))
    # the conv front end sees the padding only at the last frame's receptive field edge
    torch.testing.assert_close(padded[:, : alone.shape[1] - 1], alone[:, :-1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_checkpoints_with_conv_biases_load_into_the_same_function(dtype):
    """Earlier versions (and the shipped model) had a bias on each conv before batch norm; it
    folds into the norm's running mean, so the old front end and the loaded one agree."""
    torch.manual_seed(0)
    channels = 8
    convs = [
        torch.nn.Conv2d(1, channels, 3, stride=2, padding=1),
        torch.nn.Conv2d(channels, channels, 3, stride=2, padding=1),
    ]
    old = torch.nn.Sequential(
        convs[0],
        torch.nn.BatchNorm2d(channels),
        torch.nn.GELU(),
        convs[1],
        torch.nn.BatchNorm2d(channels),
        torch.nn.GELU(),
    )
    with torch.no_grad():
        for conv in convs:
            assert conv.bias is not None
            conv.bias.normal_(0, 2)  # large, so a lost or doubled bias shows
        old.train()
        for _ in range(3):  # running statistics away from 0 / 1
            old(torch.randn(4, 1, 60, 80) * 2 + 1)
    stored = {k: v.to(dtype) if v.is_floating_point() else v for k, v in old.state_dict().items()}
    old.load_state_dict(stored)  # the old front end computes with what is stored, rounded or not
    old.eval()
    model = Recognizer(RecognizerConfig(hidden_size=16, conv_channels=channels)).eval()
    weights = {f"frontend.conv.{k}": v for k, v in stored.items()}
    weights.update({k: v for k, v in model.state_dict().items() if not k.startswith("frontend.")})
    model.load_state_dict(weights)  # strict: the biases are consumed, nothing is missing

    x = torch.randn(2, 60, 80)
    with torch.no_grad():
        want = old(x.unsqueeze(1)).permute(0, 2, 1, 3).flatten(2)
        got = model.frontend(x)
    # the fold is done in float32, so a float16 checkpoint loses nothing more to it
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

    # load_state_dict(assign=True) takes the file's tensors as they are, the folded mean too
    assigned = Recognizer(RecognizerConfig(hidden_size=16, conv_channels=channels))
    assigned.load_state_dict(weights, assign=True)
    front = assigned.frontend.state_dict().values()
    assert {t.dtype for t in front if t.is_floating_point()} == {dtype}


@pytest.mark.slow
@pytest.mark.parametrize(("units", "subsampling"), [("chars", 2), ("pieces", 6)])
def test_overfits_a_handful_of_utterances(speech_manifest, units, subsampling):
    """The whole model path learns: loss falls and greedy decoding returns the transcripts
    (characters at 20 ms frames; word pieces at 60 ms, the coarsest rate)."""
    torch.manual_seed(0)
    utts = read_manifest(speech_manifest)
    tokenizer = CharTokenizer()
    if units == "pieces":
        tokenizer = train_piece_tokenizer([u.text for u in utts], vocab_size=40)
    extractor = FeatureExtractor(FeatureConfig())
    feats = [extractor(load_audio(u.audio, 16000)) for u in utts]
    lengths = torch.tensor([f.shape[0] for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, 80)
    targets = [torch.tensor(tokenizer.encode(u.text)) for u in utts]
    target_lengths = torch.tensor([len(t) for t in targets])
    y = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True)  # (B, L)

    model = Recognizer(
        RecognizerConfig(
            vocab_size=len(tokenizer),
            hidden_size=96,
            num_layers=2,
            conv_channels=16,
            dropout=0.0,
            subsampling=subsampling,
        )
    )
    # every transcript fits its frames, so a failure is the model's, not CTC's
    assert (target_lengths < model.output_lengths(lengths)).all()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(400):
        log_probs, out_lengths = model(x, lengths)
        loss = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1), y, out_lengths, target_lengths, zero_infinity=True
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 25 == 24:
            model.eval()
            with torch.no_grad():
                log_probs, out_lengths = model(x, lengths)
                hyps = greedy_decode(log_probs, out_lengths, tokenizer)
            model.train()
            if hyps == [u.text for u in utts]:
                break
    assert losses[-1] < 0.2 * losses[0]
    assert hyps == [u.text for u in utts]
