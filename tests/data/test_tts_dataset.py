import numpy as np
import pytest
import soundfile as sf
import torch

from speechseq.data import TtsDataset, Utterance, collate_tts, read_manifest, stop_targets
from speechseq.data.tts import trim_silence
from speechseq.features import FeatureExtractor
from speechseq.text import CharTokenizer
from speechseq.tts.config import tts_feature_config


def test_trim_silence_cuts_the_quiet_edges():
    rate = 16000
    t = torch.arange(rate) / rate
    tone = 0.5 * torch.sin(2 * torch.pi * 220 * t)  # 1 s
    noise = 1e-4 * torch.randn(rate // 2, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([noise, tone, noise])  # 0.5 s of -80 dB either side
    trimmed = trim_silence(padded, top_db=40, hop_length=200, margin=800)
    assert rate <= len(trimmed) <= rate + 2 * 800 + 2 * 800  # the tone, the margins, a frame
    assert trim_silence(noise, top_db=40, hop_length=200).numel() > 0  # all quiet: kept


def test_items_are_trimmed_cached_and_collated(tts_manifest, tmp_path):
    utts = read_manifest(tts_manifest)
    audio, rate = sf.read(utts[0].audio, dtype="float32")
    silent_edges = tmp_path / "padded.wav"
    sf.write(silent_edges, np.concatenate([np.zeros(rate), audio, np.zeros(rate)]), rate)
    extractor = FeatureExtractor(tts_feature_config(16000, normalize="none"))
    plain = TtsDataset(utts[:1], extractor, CharTokenizer(), trim_db=None)
    trimmed = TtsDataset(
        [utts[0], Utterance(str(silent_edges), utts[0].text, 3.0)],
        extractor,
        CharTokenizer(),
        cache=True,
    )
    first, second, untrimmed = trimmed[0], trimmed[1], plain[0]
    assert first is not None and second is not None and untrimmed is not None
    assert first["mel"].shape[0] < untrimmed["mel"].shape[0]  # espeak's own silences
    # 2 s of added silence are gone too, bar the 0.05 s margins (4 frames each) that the
    # original may have had no room for
    assert 0 <= second["mel"].shape[0] - first["mel"].shape[0] <= 9
    assert trimmed[0] is first  # cached
    assert first["tokens"].tolist() == CharTokenizer().encode(utts[0].text)

    batch = collate_tts([first, None, untrimmed], reduction_factor=3)
    assert batch is not None
    assert batch.mels.shape[1] % 3 == 0 and batch.mels.shape[1] >= int(batch.mel_lengths.max())
    assert batch.stop_targets.shape == (2, batch.mels.shape[1] // 3)
    assert batch.tokens.shape == (2, len(utts[0].text)) and batch.texts == [utts[0].text] * 2
    assert collate_tts([None]) is None


def test_unusable_items_are_skipped_with_a_warning(tmp_path, tts_manifest):
    good = read_manifest(tts_manifest)[0]
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    dataset = TtsDataset(
        [Utterance(str(broken), "hello", 1.0), Utterance(good.audio, "###", 1.0)],
        FeatureExtractor(tts_feature_config(16000).with_stats(torch.zeros(80), torch.ones(80))),
        CharTokenizer(),
    )
    with pytest.warns(UserWarning, match="not readable"):
        assert dataset[0] is None
    with pytest.warns(UserWarning, match="no speakable text"):
        assert dataset[1] is None


def test_stop_targets():
    assert stop_targets(torch.tensor([8, 5, 9]), 4, 3).tolist() == [
        [0, 1, 1],
        [0, 1, 1],
        [0, 0, 1],
    ]
    assert stop_targets(torch.tensor([3]), 1, 4).tolist() == [[0, 0, 1, 1]]
