"""One voice of the synthetic corpus speaking many sentences: the text-to-speech training data.

    python local/make_voice.py ../asr/data/text data --voice flite-slt --train 2800 --dev 30

Takes the first ``--train`` sentences of the corpus's ``train.txt`` and the first ``--dev`` of
its ``dev.txt`` (so none is in its test sets), has the voice speak each one at its natural rate
and pitch, and writes ``<out>/wav/<split>/<id>.wav`` (16 kHz) and ``<out>/<split>.jsonl``.

The voice reads the *normalised* transcript (lower case, no punctuation), exactly the text the
synthesizer will see, so every pause in the audio can be predicted from its input; reading the
punctuated text would put pauses at commas the model cannot see. Resumable: files that exist
are kept, each file is written under a temporary name first.
"""

import argparse
import shutil
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

# The voices and engine commands of the ASR corpus recipe (recipes/synthetic/asr/local).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "asr" / "local"))
# found through the sys.path entry above, which pyright does not follow
from voices import (  # noqa: E402  # pyright: ignore[reportMissingImports]
    BY_NAME,
    Prosody,
    synthesize,
)

from speechseq.data import Utterance, write_manifest  # noqa: E402

BATCH = 25


def read_sentences(path: Path, count: int) -> list[str]:
    """The first ``count`` normalised sentences of a corpus text file (``norm<TAB>spoken``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < count:
        raise SystemExit(f"{path}: has {len(lines)} sentences, {count} wanted")
    return [line.split("\t")[0] for line in lines[:count]]


def run_batch(args: tuple[str, list[tuple[str, Path]], Path]) -> tuple[int, list[Path]]:
    voice, jobs, tmp_root = args
    neutral = Prosody(1.0, 0)
    return len(jobs), synthesize(BY_NAME[voice], [(t, neutral, p) for t, p in jobs], tmp_root)


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text_dir", type=Path, help="the ASR corpus's data/text")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--voice", default="flite-slt", choices=sorted(BY_NAME))
    parser.add_argument("--train", type=int, default=2800, help="train sentences (~3.8 s each)")
    parser.add_argument("--dev", type=int, default=30, help="dev sentences")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()

    splits = {
        "train": read_sentences(args.text_dir / "train.txt", args.train),
        "dev": read_sentences(args.text_dir / "dev.txt", args.dev),
    }
    planned = {
        split: [
            (text, args.out_dir / "wav" / split / f"{split}-{i:05d}.wav")
            for i, text in enumerate(texts)
        ]
        for split, texts in splits.items()
    }
    todo = [job for jobs in planned.values() for job in jobs if not job[1].is_file()]
    for split in planned:
        (args.out_dir / "wav" / split).mkdir(parents=True, exist_ok=True)
    tmp_root = args.out_dir / "wav" / ".tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    started, failed = time.time(), []
    work = [(args.voice, todo[i : i + BATCH], tmp_root) for i in range(0, len(todo), BATCH)]
    with Pool(args.jobs) as pool, tqdm(total=len(todo), unit="utt") as bar:
        for done, bad in pool.imap_unordered(run_batch, work):
            failed += bad
            bar.update(done)
    shutil.rmtree(tmp_root, ignore_errors=True)
    print(f"synthesized {len(todo) - len(failed)} files in {time.time() - started:.0f} s")
    if failed:
        raise SystemExit(f"{len(failed)} files failed (e.g. {failed[0]}); run again to retry")

    for split, jobs in planned.items():
        utterances = [Utterance(str(path), text, sf.info(path).duration) for text, path in jobs]
        write_manifest(utterances, args.out_dir / f"{split}.jsonl")
        hours = sum(u.duration for u in utterances) / 3600
        print(f"{split}: {len(utterances)} utterances, {hours:.2f} h, voice {args.voice}")


if __name__ == "__main__":
    main()
