"""Decide who says what: give every sentence its voice(s) and prosody, reproducibly.

    python local/assign_voices.py data/text data/plan     # prepare.sh stage 2

Writes ``{train,dev,test_seen,test_heldout}.tsv`` with one utterance a line:
``utt_id  voice  speed  pitch_cents  text  spoken``. Choices come from an RNG seeded by the split
and the sentence's line number, so the plan (and the audio made from it) is the same on every run
and does not shift when another sentence changes. Train sentences get one or two distinct train
voices; dev and test_seen one train voice; test_heldout one held-out voice.
"""

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

from voices import HELD_OUT_VOICES, TRAIN_VOICES, Prosody, Voice, voice_weights

SPLITS = ["train", "dev", "test_seen", "test_heldout"]
SECOND_VOICE = 0.5  # chance a train sentence is also said by a second voice (~1.5 voices each)


def pick(rng: random.Random, voices: list[Voice], weights: list[float], k: int) -> list[Voice]:
    """``k`` distinct voices drawn by weight."""
    chosen: list[Voice] = []
    while len(chosen) < k:
        voice = rng.choices(voices, weights)[0]
        if voice not in chosen:
            chosen.append(voice)
    return chosen


def plan_split(split: str, lines: list[str], seed: int) -> list[str]:
    voices = HELD_OUT_VOICES if split == "test_heldout" else TRAIN_VOICES
    weights = [1.0] * len(voices) if split == "test_heldout" else voice_weights(voices)
    rows = []
    for index, line in enumerate(lines):
        text, spoken = line.split("\t")
        rng = random.Random(f"{seed}:{split}:{index}")
        k = 2 if split == "train" and rng.random() < SECOND_VOICE else 1
        for voice in pick(rng, voices, weights, k):
            prosody = Prosody.draw(rng)
            utt_id = f"{split}-{index:05d}-{voice.name}"
            rows.append(
                f"{utt_id}\t{voice.name}\t{prosody.speed}\t{prosody.pitch}\t{text}\t{spoken}\n"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    held_out = {v.name for v in HELD_OUT_VOICES}
    for split in SPLITS:
        lines = (args.text_dir / f"{split}.txt").read_text(encoding="utf-8").splitlines()
        rows = plan_split(split, lines, args.seed)
        used = Counter(row.split("\t")[1] for row in rows)
        if split == "test_heldout":
            assert set(used) <= held_out, "test_heldout must use held-out voices only"
        else:
            assert not set(used) & held_out, f"held-out voice in {split}"
        (args.out_dir / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
        print(
            f"{split}: {len(lines)} sentences -> {len(rows)} utterances, {len(used)} voices",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
