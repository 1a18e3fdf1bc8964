"""Copy a few short held-out-voice test utterances into data/samples/ (the README's first command
transcribes them):

    python local/make_samples.py data/test_heldout.jsonl ../../../data/samples

One utterance per held-out voice (the shortest between 2 and 4 seconds), as ``<voice>.wav`` with a
same-stem ``.txt`` transcript.
"""

import argparse
import shutil
from pathlib import Path

from speechseq.data import read_manifest


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    by_voice: dict[str, list] = {}
    for utt in read_manifest(args.manifest):
        if 2.0 <= utt.duration <= 4.0 and len(utt.text.split()) >= 4:
            by_voice.setdefault(Path(utt.audio).parent.name, []).append(utt)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for voice, utts in sorted(by_voice.items()):
        utt = min(utts, key=lambda u: (u.duration, u.audio))
        shutil.copyfile(utt.audio, args.out_dir / f"{voice}.wav")
        (args.out_dir / f"{voice}.txt").write_text(utt.text + "\n")
        print(f"{voice}: {utt.text}")


if __name__ == "__main__":
    main()
