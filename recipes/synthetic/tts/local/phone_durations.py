"""Sharpen the CTC character durations with the teacher's own phone timings.

``speechseq tts durations`` measures each character's frames by CTC forced alignment with the
character recognizer: its boundaries lie on the recognizer's 40 ms grid, and every character,
spaces included, gets at least one recognizer frame. The teacher (flite) knows exactly where each
of its phones ends (``flite -psdur``), and its audio is the same every time it speaks a text. This
script shifts those phone times by the silence the TTS data trims, aligns each sentence's letters
to the phones (:func:`align_letters`), gives each character its phones' frames, and writes a
durations file of the same form. An utterance whose letters fit the phones worse than
``--max-cost`` keeps its CTC durations.

    python local/phone_durations.py data/train.durations.jsonl data/train.phone.durations.jsonl

Only for a voice made by ``local/make_voice.py`` with a flite voice (default slt), whose audio is
flite's output unchanged; the script checks that flite's timings end where each file ends.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
from multiprocessing import Pool
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from speechseq.data.tts import trim_bounds
from speechseq.files import atomic_path
from speechseq.tts.durations import fill_empty, read_durations

RATE, HOP = 16000, 200  # the voice's features (hparams/duration.yaml): 16 kHz, 12.5 ms hop
TRIM_DB, TRIM_MARGIN = 40.0, 0.05  # its data section's trimming


def phone_ends(text: str, voice: str) -> list[tuple[str, float]]:
    """The phones flite speaks ``text`` with, and when each ends (seconds)."""
    out = subprocess.run(
        ["flite", "-voice", voice, "--setf", "duration_stretch=1.000", "-psdur", "-t", text,
         "none"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [(p, float(t)) for p, t in (item.rsplit(":", 1) for item in out.split())]


VOWELS = "aa ae ah ao aw ax axr ay eh er ey ih iy ow oy uh uw".split()
# The phones each letter may speak (CMU phones, as flite's lexicon uses them): any vowel letter
# any vowel (and y/w: "u" in "use", "o" in "one"); digraph letters (h in "th", "sh", "ch", "ph",
# "gh") may be silent at no cost. Another phone costs MISMATCH, silence SILENT (some letters
# are silent for free).
ALLOWED: dict[str, set[str]] = {
    **{v: {*VOWELS, "y", "w"} for v in "aeiouy"},
    "b": {"b"}, "c": {"k", "s", "ch", "sh"}, "d": {"d", "t", "jh"}, "f": {"f", "v"},
    "g": {"g", "jh", "zh", "ng", "f"}, "h": {"hh"}, "j": {"jh", "y", "hh"}, "k": {"k"},
    "l": {"l", *VOWELS}, "m": {"m"}, "n": {"n", "ng"}, "p": {"p", "f"}, "q": {"k", "w"},
    "r": {"r", "er", "axr"}, "s": {"s", "z", "sh", "zh"}, "t": {"t", "th", "dh", "ch", "sh", "d"},
    "v": {"v"}, "w": {"w", *VOWELS}, "x": {"k", "s", "g", "z", "sh"}, "z": {"z", "s", "zh"},
    "y": {*VOWELS, "y"},
}  # fmt: skip
FREE_SILENT = set("aeiouyhw' ")  # silent at no cost (and spaces, the apostrophe)
SILENT, MISMATCH, PAUSE = 0.6, 3.0, 3.0
TWO_PHONES = 0.2  # a letter speaking two phones (x → k s) costs this more than one
NEAR = 0.02  # cost per frame between a character's CTC centre and its phones' centre


def align_letters(
    text: str, phones: list[str], edges: list[int], ctc: list[int]
) -> tuple[list[int], float]:
    """Each character's frames, from a monotonic alignment of the letters to the phones.

    Every character takes 0, 1 or 2 consecutive phones (x → k s, u → y uw); a space takes a
    pause or nothing; the cost is what :data:`ALLOWED` says plus :data:`NEAR` per frame between
    the character's CTC centre and its phones' centre, which settles ties ("ll": which l).

    Args:
        text: the characters (one per duration).
        phones: flite's phones, the leading and trailing pauses removed.
        edges: len(phones) + 1 frame boundaries (the first 0, the last the utterance's frames).
        ctc: the CTC character durations (summing to the same frames).

    Returns:
        frames per character (summing to ``edges[-1]``) and the alignment's cost per character.
    """
    n_chars, n_phones = len(text), len(phones)
    centres, at = [], 0
    for d in ctc:
        centres.append(at + d / 2)
        at += d
    inf = float("inf")
    cost = [[inf] * (n_phones + 1) for _ in range(n_chars + 1)]
    back = [[0] * (n_phones + 1) for _ in range(n_chars + 1)]
    cost[0][0] = 0.0
    for i, ch in enumerate(text):
        allowed = ALLOWED.get(ch, set())
        row, nxt, bk = cost[i], cost[i + 1], back[i + 1]
        for j in range(n_phones + 1):
            here = row[j]
            if here == inf:
                continue
            for k in (0, 1, 2):
                if j + k > n_phones:
                    break
                if k == 0:
                    c = 0.0 if ch in FREE_SILENT else SILENT
                else:
                    c = 0.0
                    for ph in phones[j : j + k]:
                        if ph == "pau":
                            c += 0.0 if ch == " " else PAUSE
                        elif ch == " " or ph not in allowed:
                            c += MISMATCH
                    c += TWO_PHONES * (k - 1)
                c += NEAR * abs(centres[i] - (edges[j] + edges[j + k]) / 2)
                if here + c < nxt[j + k]:
                    nxt[j + k], bk[j + k] = here + c, k
    if cost[n_chars][n_phones] == inf:
        return list(ctc), inf
    durations, j = [], n_phones
    for i in range(n_chars, 0, -1):
        k = back[i][j]
        durations.append(edges[j] - edges[j - k])
        j -= k
    durations.reverse()
    return durations, cost[n_chars][n_phones] / n_chars


def refine(job: tuple[dict, Path, str, float]) -> tuple[dict | None, float, str]:
    record, audio, voice, max_cost = job
    waveform, rate = sf.read(audio, dtype="float32")
    if rate != RATE:
        return None, 0.0, f"{audio}: {rate} Hz, not {RATE}"
    timed = phone_ends(record["text"], voice)
    seconds = len(waveform) / rate
    if not timed or abs(timed[-1][1] - seconds) > 0.02:
        return None, 0.0, f"{audio}: flite's phones end at {timed[-1:]}, the audio at {seconds} s"
    start, _ = trim_bounds(torch.from_numpy(waveform), TRIM_DB, HOP, round(TRIM_MARGIN * rate))
    total = record["frames"]
    # phone boundaries in TTS frames: a frame whose centre (j * hop) lies before the boundary
    # comes before it; the edge pauses belong to the first and last characters
    phones = [name for name, _ in timed]
    ends = [math.ceil((t - start / rate) * rate / HOP - 1e-6) for _, t in timed]
    lo = 1 if phones[0] == "pau" else 0
    hi = len(phones) - 1 if phones[-1] == "pau" and len(phones) > lo + 1 else len(phones)
    inner = [min(total, max(0, e)) for e in ends[lo : hi - 1]]
    edges = list(itertools.accumulate([0, *inner, total], max))  # monotonic
    text = record["text"]
    durations, cost = align_letters(text, phones[lo:hi], edges, record["durations"])
    if cost > max_cost:  # flite read the text otherwise (numbers, abbreviations): keep CTC's
        return record, cost, ""
    if total >= len(durations):
        fill_empty(durations)
    return {**record, "durations": durations}, cost, ""


def main() -> None:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("durations", type=Path, help="from speechseq tts durations")
    parser.add_argument("out", type=Path, help="the sharpened durations file to write")
    parser.add_argument("--voice", default="slt", help="the flite voice that spoke the data")
    parser.add_argument(
        "--max-cost",
        type=float,
        default=1.0,
        help="an utterance whose letters fit flite's phones worse than this (per character) "
        "keeps its CTC durations",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    if args.out.exists():
        sys.exit(f"{args.out} exists; delete it to measure again")
    read_durations(args.durations)  # checks the file
    lines = args.durations.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    base = args.durations.parent
    jobs = [(r, base / r["audio"], args.voice, args.max_cost) for r in records]
    costs = []
    with Pool(args.jobs) as pool, atomic_path(args.out) as tmp, tmp.open("w") as f:
        for record, cost, problem in tqdm(
            pool.imap(refine, jobs, chunksize=16), total=len(jobs), unit="utt"
        ):
            if record is None:
                sys.exit(f"error: {problem}")
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            costs.append(cost)
    kept = sum(c > args.max_cost for c in costs)
    costs.sort()
    print(
        f"{args.out}: {len(records)} utterances; alignment cost per character: median "
        f"{costs[len(costs) // 2]:.3f}, worst {costs[-1]:.3f}; {kept} kept their CTC durations"
    )


if __name__ == "__main__":
    main()
