"""Write the JSONL manifests and voices.json for the synthesized corpus, and check it.

    python local/make_manifests.py data/plan data/wav data     # prepare.sh stage 4

For each split, every planned utterance whose audio exists becomes an ``Utterance(audio, text,
duration)`` with the normalised sentence as text, written to ``<out>/<split>.jsonl``. Utterances
that are silent, shorter than 0.3 s, longer than 20 s or hold a click (a synthesis glitch) are
dropped and counted. Prints hours and utterances per voice, and writes ``<out>/voices.json``
(``--voices-json``: the voices of the splits, with their engine, engine voice name and per-split
counts). Fails if a sentence is in two splits (``train_extra`` and ``dev_heldout`` re-use train's
and dev's sentences and count as those), a voice speaks a split its role does not allow, or a
planned file is missing. ``--splits train_extra dev_heldout`` writes the extra splits' manifests.
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
from voices import (
    BY_NAME,
    ROLES,
    SAMPLE_RATE,
    SPLIT_ROLE,
    SPLIT_TEXT,
    VOICES,
    add_splits_option,
    has_click,
)

from speechseq.data import Utterance, write_manifest

MIN_SECONDS, MAX_SECONDS = 0.3, 20.0
SILENT_RMS = 1e-4  # about -80 dBFS


def check_audio(path: Path) -> tuple[float, str | None]:
    """Duration of a file, and why it must be dropped (None if it is fine)."""
    audio, rate = sf.read(path, dtype="float32")
    if rate != SAMPLE_RATE or audio.ndim != 1:
        raise SystemExit(f"{path}: expected 16 kHz mono, got {rate} Hz, shape {audio.shape}")
    duration = len(audio) / rate
    if len(audio) == 0 or float(np.sqrt(np.mean(audio**2))) < SILENT_RMS:
        return duration, "silent"
    if duration < MIN_SECONDS:
        return duration, "too short"
    if duration > MAX_SECONDS:
        return duration, "too long"
    if has_click(audio):
        return duration, "click"
    return duration, None


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan_dir", type=Path)
    parser.add_argument("wav_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    add_splits_option(parser, "write")
    parser.add_argument("--voices-json", default="voices.json", help="file name under out_dir")
    args = parser.parse_args()

    splits: list[str] = args.splits
    texts: dict[str, set[str]] = {}
    stats: dict[str, dict[str, list[float]]] = {}  # split -> voice -> durations
    for split in splits:
        utterances, dropped, missing = [], defaultdict(int), []
        per_voice: dict[str, list[float]] = defaultdict(list)
        for line in (args.plan_dir / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            utt_id, voice, _speed, _pitch, text, _spoken = line.split("\t")
            if BY_NAME[voice].role != SPLIT_ROLE[split]:
                raise SystemExit(f"{utt_id}: voice {voice} does not belong in {split}")
            path = args.wav_dir / split / voice / f"{utt_id}.wav"
            if not path.is_file():
                missing.append(path)
                continue
            duration, reason = check_audio(path)
            if reason:
                dropped[reason] += 1
                print(f"dropped {utt_id}: {reason} ({duration:.2f} s)", file=sys.stderr)
                continue
            utterances.append(Utterance(str(path), text, duration))
            per_voice[voice].append(duration)
        if missing:
            raise SystemExit(
                f"{split}: {len(missing)} planned files missing, e.g. {missing[0]}; "
                "run stage 3 again"
            )
        write_manifest(utterances, args.out_dir / f"{split}.jsonl")
        texts[split] = {u.text for u in utterances}
        stats[split] = per_voice

        hours = sum(u.duration for u in utterances) / 3600
        dropped_note = ", ".join(f"{n} {why}" for why, n in dropped.items()) or "none"
        print(
            f"\n{split}: {len(utterances)} utterances, {len(texts[split])} sentences, "
            f"{hours:.2f} h, {len(per_voice)} voices; dropped: {dropped_note}"
        )
        for voice in sorted(per_voice):
            durations = per_voice[voice]
            print(f"  {voice:28s} {len(durations):6d} utt  {sum(durations) / 3600:6.2f} h")

    # A sentence may be in train and train_extra (or dev and dev_heldout), never in two groups.
    groups: dict[str, set[str]] = {}
    for split in splits:
        groups.setdefault(SPLIT_TEXT.get(split, split), set()).update(texts[split])
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = groups[a] & groups[b]
            assert not shared, f"{a} and {b} share {len(shared)} sentences, e.g. {min(shared)!r}"

    def describe(role):
        return [
            {
                "name": v.name,
                "engine": v.engine,
                "engine_voice": v.voice,
                "utterances": {s: len(stats[s].get(v.name, [])) for s in splits},
                "hours": {s: round(sum(stats[s].get(v.name, [])) / 3600, 3) for s in splits},
            }
            for v in VOICES
            if v.role == role
        ]

    roles = [r for r in ROLES if r in {SPLIT_ROLE[s] for s in splits}]
    summary = {("held_out" if r == "test_heldout" else r): describe(r) for r in roles}
    (args.out_dir / args.voices_json).write_text(json.dumps(summary, indent=2) + "\n")
    for split in splits:
        if split.startswith("train"):
            hours = sum(sum(d) for d in stats[split].values()) / 3600
            print(f"{split}: {hours:.2f} h from {len(stats[split])} voices")
    print("no sentence in two splits; every voice only in the splits of its role")


if __name__ == "__main__":
    main()
