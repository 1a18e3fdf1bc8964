"""Synthesize the tiny corpus: short sentences over a 20-word vocabulary in five espeak-ng voices.

    python local/make_data.py data/           # run by prepare.sh stage 1

Sentences are random word strings from a fixed seed, so the corpus is the same on every machine
with the same espeak-ng. Dev and test sentences never occur in train (the model must generalise to
new word orders), and all three sets use the same voices (this is a smoke test, not a benchmark).
"""

import argparse
import random
import subprocess
import sys
from pathlib import Path

WORDS = (
    "zero one two three four five six seven eight nine "
    "yes no red green blue black white left right stop"
).split()
VOICES = ["gmw/en+m1", "gmw/en-US+f2", "gmw/en-GB-scotland+m3", "gmw/en-029+f1", "gmw/en-US-nyc+m4"]
SIZES = {"train": 60, "dev": 10, "test": 10}


def make_sentences(seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    sets: dict[str, list[str]] = {}
    for name, size in SIZES.items():
        sentences = []
        while len(sentences) < size:
            s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 5)))
            if s not in seen:
                seen.add(s)
                sentences.append(s)
        sets[name] = sentences
    return sets


def synthesize(text: str, voice: str, speed: int, pitch: int, out: Path) -> None:
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text]
    subprocess.run(cmd, check=True, capture_output=True)
    out.with_suffix(".txt").write_text(text + "\n")


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed + 1)
    for name, sentences in make_sentences(args.seed).items():
        folder = args.out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(sentences):
            voice = VOICES[i % len(VOICES)]
            speed, pitch = rng.randint(140, 190), rng.randint(30, 70)
            out = folder / f"{name}-{i:03d}.wav"
            if not out.exists():
                synthesize(text, voice, speed, pitch, out)
        print(f"{folder}: {len(sentences)} utterances", file=sys.stderr)


if __name__ == "__main__":
    main()
