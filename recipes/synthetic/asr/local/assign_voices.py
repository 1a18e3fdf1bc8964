"""Decide who says what: give every sentence its voice(s) and prosody, reproducibly.

    python local/assign_voices.py data/text data/plan     # prepare.sh stage 2

Writes ``{train,dev,test_seen,test_heldout}.tsv`` with one utterance a line:
``utt_id  voice  speed  pitch_cents  text  spoken``, and the same for ``train_extra`` and
``dev_heldout`` (train and dev sentences read by the extra and held-out dev voices). Choices come
from an RNG seeded by the split and the sentence's line number, so the plan (and the audio made
from it) is the same on every run and does not shift when another sentence changes or another
split is added. Train sentences get one or two distinct train voices; dev and test_seen one train
voice; test_heldout one held-out voice; 3 in 4 train sentences one extra voice (``train_extra``);
every dev sentence one held-out dev voice (``dev_heldout``).
"""

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

from voices import (
    BASE_SPLITS,
    EXTRA_SPLITS,
    SPLIT_ROLE,
    SPLIT_TEXT,
    Prosody,
    Voice,
    split_voices,
    voice_weights,
)

SECOND_VOICE = 0.5  # chance a train sentence is also said by a second voice (~1.5 voices each)
EXTRA_SHARE = 0.75  # chance a train sentence is also said by an extra voice (train_extra)


def pick(rng: random.Random, voices: list[Voice], weights: list[float], k: int) -> list[Voice]:
    """``k`` distinct voices drawn by weight."""
    chosen: list[Voice] = []
    while len(chosen) < k:
        voice = rng.choices(voices, weights)[0]
        if voice not in chosen:
            chosen.append(voice)
    return chosen


def plan_split(split: str, lines: list[str], seed: int) -> list[str]:
    voices = split_voices(split)
    # Train voices by engine share (espeak-ng has most voices); the other roles' evenly.
    weights = voice_weights(voices) if SPLIT_ROLE[split] == "train" else [1.0] * len(voices)
    rows = []
    for index, line in enumerate(lines):
        text, spoken = line.split("\t")
        rng = random.Random(f"{seed}:{split}:{index}")
        if split == "train_extra":
            k = 1 if rng.random() < EXTRA_SHARE else 0
        else:
            k = 2 if split == "train" and rng.random() < SECOND_VOICE else 1
        for voice in pick(rng, voices, weights, k):
            prosody = Prosody.draw(rng)
            utt_id = f"{split}-{index:05d}-{voice.name}"
            rows.append(
                f"{utt_id}\t{voice.name}\t{prosody.speed}\t{prosody.pitch}\t{text}\t{spoken}\n"
            )
    return rows


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for split in BASE_SPLITS + EXTRA_SPLITS:
        text_file = args.text_dir / f"{SPLIT_TEXT.get(split, split)}.txt"
        lines = text_file.read_text(encoding="utf-8").splitlines()
        rows = plan_split(split, lines, args.seed)
        used = Counter(row.split("\t")[1] for row in rows)
        allowed = {v.name for v in split_voices(split)}
        assert set(used) <= allowed, f"{split}: voices of another role {set(used) - allowed}"
        (args.out_dir / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
        print(
            f"{split}: {len(lines)} sentences -> {len(rows)} utterances, {len(used)} voices",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
