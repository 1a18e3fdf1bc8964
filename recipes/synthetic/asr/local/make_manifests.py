"""Write the JSONL manifests and voices.json for the synthesized corpus, and check it.

    python local/make_manifests.py data/plan data/wav data     # prepare.sh stage 4

For each split, every planned utterance whose audio exists becomes an ``Utterance(audio, text,
duration)`` with the normalised sentence as text, written to ``<out>/<split>.jsonl``. Utterances
that are silent, shorter than 0.3 s, longer than 20 s or hold a click (a synthesis glitch) are
dropped and counted. Prints hours and utterances per voice, and writes ``<out>/voices.json``
(train and held-out voices, with their engine, engine voice name and per-split counts). Fails if
a sentence is in two splits, a held-out voice is outside test_heldout, or a planned file is
missing.
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
from voices import BY_NAME, HELD_OUT_VOICES, SAMPLE_RATE, TRAIN_VOICES, has_click

from speechseq.data import Utterance, write_manifest

SPLITS = ["train", "dev", "test_seen", "test_heldout"]
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan_dir", type=Path)
    parser.add_argument("wav_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()

    held_out = {v.name for v in HELD_OUT_VOICES}
    texts: dict[str, set[str]] = {}
    stats: dict[str, dict[str, list[float]]] = {}  # split -> voice -> durations
    for split in SPLITS:
        utterances, dropped, missing = [], defaultdict(int), []
        per_voice: dict[str, list[float]] = defaultdict(list)
        for line in (args.plan_dir / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            utt_id, voice, _speed, _pitch, text, _spoken = line.split("\t")
            if (voice in held_out) != (split == "test_heldout"):
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

    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            shared = texts[a] & texts[b]
            assert not shared, f"{a} and {b} share {len(shared)} sentences, e.g. {min(shared)!r}"

    def describe(voices):
        return [
            {
                "name": v.name,
                "engine": v.engine,
                "engine_voice": v.voice,
                "utterances": {s: len(stats[s].get(v.name, [])) for s in SPLITS},
                "hours": {s: round(sum(stats[s].get(v.name, [])) / 3600, 3) for s in SPLITS},
            }
            for v in voices
        ]

    assert all(name in BY_NAME for split in stats for name in stats[split])
    summary = {"train": describe(TRAIN_VOICES), "held_out": describe(HELD_OUT_VOICES)}
    (args.out_dir / "voices.json").write_text(json.dumps(summary, indent=2) + "\n")
    train_hours = sum(sum(d) for d in stats["train"].values()) / 3600
    print(
        f"\nno sentence in two splits; held-out voices only in test_heldout; "
        f"train {train_hours:.2f} h from {len(stats['train'])} voices"
    )


if __name__ == "__main__":
    main()
