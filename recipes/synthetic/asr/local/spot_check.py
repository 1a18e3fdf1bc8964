"""Listen with a stock recognizer: PocketSphinx WER per voice on a few random utterances.

    pip install pocketsphinx
    python local/spot_check.py data --per-voice 5     # prepare.sh stage 5

A sanity check that each voice says its transcript, not a benchmark: PocketSphinx's en-us model
recognises flite and festival speech well (WER around 10-30 %) but espeak-ng's formant speech
poorly (often 50-90 %). A voice far above its engine's usual range is producing wrong audio.
Also prints each file's duration and RMS level. Utterances are picked with a fixed seed.
"""

import argparse
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
from voices import SPLIT_ROLE

from speechseq.data import read_manifest
from speechseq.metrics import wer


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--per-voice", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # optional: pip install pocketsphinx (see the docstring)
    from pocketsphinx import Decoder  # pyright: ignore[reportMissingImports]

    by_voice = defaultdict(list)
    for split in SPLIT_ROLE:
        if not (args.data_dir / f"{split}.jsonl").is_file():
            continue  # the extra splits are made only for fine-tuning
        for utt in read_manifest(args.data_dir / f"{split}.jsonl"):
            by_voice[Path(utt.audio).parent.name].append(utt)
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    rng = random.Random(args.seed)
    for voice in sorted(by_voice):
        utts = rng.sample(by_voice[voice], min(args.per_voice, len(by_voice[voice])))
        refs, hyps, levels = [], [], []
        for utt in utts:
            audio, _ = sf.read(utt.audio, dtype="int16")
            levels.append(float(np.sqrt(np.mean((audio / 32768.0) ** 2))))
            decoder.start_utt()
            decoder.process_raw(audio.tobytes(), full_utt=True)
            decoder.end_utt()
            refs.append(utt.text)
            hyps.append(decoder.hyp().hypstr if decoder.hyp() else "")
        durations = [u.duration for u in utts]
        print(
            f"{voice:28s} WER {100 * wer(refs, hyps):5.1f} %  "
            f"duration {min(durations):.1f}-{max(durations):.1f} s  "
            f"rms {min(levels):.3f}-{max(levels):.3f}"
        )
        print(f"    ref: {refs[0]}\n    hyp: {hyps[0]}")


if __name__ == "__main__":
    main()
