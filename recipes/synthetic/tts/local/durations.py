"""Frames per character of every utterance, for a duration-based synthesizer (run from the
recipe's folder):

    python local/durations.py data/train.jsonl data/train.durations.jsonl --recognizer ../../../speechseq/pretrained/asr-char.pt --config hparams/train.yaml
    python local/durations.py data/dev.jsonl data/dev.durations.jsonl --recognizer ../../../speechseq/pretrained/asr-char.pt --config hparams/train.yaml

Force-aligns each transcript with the recognizer on the audio trimmed and featurized exactly as
TTS training sees it (the config's ``features`` and ``data.trim_db`` / ``data.trim_margin``), so
each line's durations sum to the mel frames training computes. See speechseq.tts.durations.
"""  # noqa: E501 (the commands are meant to be copied whole)

import argparse
import json
from pathlib import Path

import torch

from speechseq.tts.config import load_tts_config
from speechseq.tts.durations import align_corpus


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="JSONL manifest (audio + text)")
    parser.add_argument("out", type=Path, help="durations file to write (JSONL)")
    parser.add_argument("--recognizer", type=Path, required=True, help="speech-to-text checkpoint")
    parser.add_argument("--config", type=Path, required=True, help="the TTS experiment YAML")
    args = parser.parse_args()

    config = load_tts_config(args.config)
    torch.set_num_threads(config.train.num_threads or 1)
    summary = align_corpus(
        args.manifest,
        args.out,
        args.recognizer,
        config.features,
        config.data.trim_db,
        config.data.trim_margin,
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
