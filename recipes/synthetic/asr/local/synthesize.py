"""Synthesize every planned utterance as 16 kHz mono 16-bit WAV, in parallel and resumably.

    python local/synthesize.py data/plan data/wav --jobs 2     # prepare.sh stage 3

Reads the plans written by ``assign_voices.py`` and writes ``<out>/<split>/<voice>/<utt_id>.wav``.
Files that already exist and are non-empty are skipped, and every file is written under a
temporary name and renamed, so an interrupted run can simply be started again. Work is handed
out in batches of one voice (festival speaks a whole batch in one process, because its start-up
costs more than a sentence).
"""

import argparse
import shutil
import sys
import time
from multiprocessing import Pool
from pathlib import Path

from tqdm import tqdm
from voices import BY_NAME, Prosody, add_splits_option, synthesize

BATCH = {"espeak-ng": 25, "flite": 25, "festival": 50, "pico": 25, "rhvoice": 25}

Job = tuple[str, Prosody, Path]


def read_jobs(plan_dir: Path, out_dir: Path, splits: list[str]) -> dict[str, list[Job]]:
    """Voice name -> the jobs it still has to do (in plan order)."""
    todo: dict[str, list[Job]] = {}
    for split in splits:
        for line in (plan_dir / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            utt_id, voice, speed, pitch, _text, spoken = line.split("\t")
            out = out_dir / split / voice / f"{utt_id}.wav"
            if out.is_file() and out.stat().st_size > 44:
                continue
            todo.setdefault(voice, []).append((spoken, Prosody(float(speed), int(pitch)), out))
    return todo


def batches(todo: dict[str, list[Job]]) -> list[tuple[str, list[Job]]]:
    """Split each voice's jobs into batches and interleave voices, so both workers stay busy
    with a mix of fast and slow engines to the end."""
    per_voice = []
    for name in sorted(todo):
        size = BATCH[BY_NAME[name].engine]
        jobs = todo[name]
        per_voice.append([(name, jobs[i : i + size]) for i in range(0, len(jobs), size)])
    out = []
    while any(per_voice):
        for queue in per_voice:
            if queue:
                out.append(queue.pop(0))
    return out


def run_batch(batch: tuple[str, list[Job], Path]) -> tuple[int, list[Path]]:
    name, jobs, tmp_root = batch
    for _, _, out in jobs:
        out.parent.mkdir(parents=True, exist_ok=True)
    return len(jobs), synthesize(BY_NAME[name], jobs, tmp_root)


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    add_splits_option(parser, "synthesize")
    args = parser.parse_args()

    # A run that was killed leaves scratch files and at most a few *.tmp.wav; never a .wav.
    tmp_root = args.out_dir / ".tmp"
    shutil.rmtree(tmp_root, ignore_errors=True)
    tmp_root.mkdir(parents=True)
    for stale in args.out_dir.rglob("*.tmp.wav"):
        stale.unlink()
    todo = read_jobs(args.plan_dir, args.out_dir, args.splits)
    total = sum(len(jobs) for jobs in todo.values())
    print(f"{total} utterances to synthesize", file=sys.stderr)
    start = time.time()
    failed: list[Path] = []
    with Pool(args.jobs) as pool, tqdm(total=total, unit="utt", smoothing=0.05) as bar:
        work = [(name, jobs, tmp_root) for name, jobs in batches(todo)]
        for done, bad in pool.imap_unordered(run_batch, work):
            failed += bad
            bar.update(done)
    shutil.rmtree(tmp_root, ignore_errors=True)
    print(
        f"synthesized {total - len(failed)} utterances in {time.time() - start:.0f} s",
        file=sys.stderr,
    )
    if failed:
        for path in failed[:20]:
            print(f"failed: {path}", file=sys.stderr)
        raise SystemExit(f"{len(failed)} utterances failed; run again to retry them")


if __name__ == "__main__":
    main()
