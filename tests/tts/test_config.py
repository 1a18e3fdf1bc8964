"""The text-to-speech experiment config."""

import pytest
import yaml

from speechseq.errors import SpeechseqError
from speechseq.tts.config import load_tts_config


def test_config_defaults_follow_the_sample_rate(tmp_path):
    config = load_tts_config(None, {"features.sample_rate": 22050})
    assert (config.features.hop_length, config.features.win_length) == (276, 1102)
    assert config.features.n_fft == 2048 and config.features.normalize == "global"
    assert config.train.out_dir == "exp/tts" and config.model.reduction_factor > 1
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"reduction_factor": 3}, "loss": {"nope": 1}}))
    with pytest.raises(SpeechseqError, match="nope"):
        load_tts_config(path)
    with pytest.raises(SpeechseqError, match="mel_loss"):
        load_tts_config(None, {"loss.mel_loss": "l3"})
