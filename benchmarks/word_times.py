"""How far speechseq's word times are from where a synthesizer put the words.

    apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
    python benchmarks/word_times.py --skip 60            # the shipped models, 60 dev sentences
    python benchmarks/word_times.py --model exp/bigru_ctc/best.pt --limit 20 --threads 1

festival reads each sentence with each voice and reports every word's first segment's start and
last segment's end (its SylStructure relation): the true word boundaries of that audio. Each
recognizer then gives the words their times with :func:`speechseq.asr.alignment.word_timings` over
two paths:

- ``forced``: the forced alignment of the reference text (the way a beam transcript gets its
  times), so every word has a true counterpart;
- ``greedy``: the greedy path, on the utterances whose greedy transcript has the reference's
  number of words (words are then paired in order).

Side by side, two timings of the same words: ``frames``, a word's bare emitting frames (from its
first emitting frame's centre to the centre of the frame after its last), and ``moved``, what
``word_timings`` makes of them (:data:`speechseq.asr.alignment.START_LEAD_FRAMES`,
``PIECE_TAIL_FRAMES``). It prints, per
recognizer, path and timing (and per voice for ``moved``): the words compared, the mean signed
error of starts and of ends (negative: too early) and their mean absolute error in ms, and the
share within 50 ms.

Sentences come from a manifest's ``text`` (default: the synthetic corpus's dev set, never its test
sets); those festival splits into another number of words are left out. The two constants were
chosen on dev's first 60 sentences: ``--skip 60`` measures on others. Voices: ``kal`` and
``slt-hts`` are training voices of the shipped models, ``ked`` is held out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from speechseq.asr.alignment import forced_align_path, word_timings
from speechseq.asr.decoding import DecoderConfig
from speechseq.asr.transcriber import Transcriber
from speechseq.audio import load_audio
from speechseq.data.manifest import read_manifest
from speechseq.pretrained import char_recognizer_path, default_recognizer_path
from speechseq.text import normalize_text

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SENTENCES = ROOT / "recipes/synthetic/asr/data/dev.jsonl"
VOICES = {  # name: (festival voice, Debian package)
    "kal": ("kal_diphone", "festvox-kallpc16k"),
    "slt-hts": ("cmu_us_slt_arctic_hts", "festvox-us-slt-hts"),
    "ked": ("ked_diphone", "festvox-kdlpc16k"),
}
# Each word's first segment's start and last segment's end, in seconds.
_WORD_TIMES = (
    '(mapcar (lambda (w) (format t "%s %f %f\\n" (item.name w) '
    '(item.feat w "R:SylStructure.daughter1.daughter1.segment_start") '
    '(item.feat w "R:SylStructure.daughtern.daughtern.segment_end"))) '
    "(utt.relation.items utt 'Word))"
)


@dataclass(frozen=True)
class Spoken:
    """One sentence read by one voice, with festival's word boundaries."""

    voice: str
    audio: Path
    text: str
    words: list[tuple[str, float, float]]  # (word, start, end) in seconds


def synthesize(sentences: list[str], voice: str, out_dir: Path) -> list[Spoken]:
    """Read ``sentences`` with festival's ``voice``; keep those whose word count festival keeps.

    Raises:
        SystemExit: festival failed (e.g. the voice is not installed).
    """
    festival_voice, package = VOICES[voice]
    lines = [f"(voice_{festival_voice})"]
    for i, text in enumerate(sentences):
        wav = out_dir / f"{voice}-{i:04d}.wav"
        quoted = text.replace("\\", " ").replace('"', " ")
        lines += [
            f'(set! utt (utt.synth (Utterance Text "{quoted}")))',
            f'(utt.save.wave utt "{wav}" \'riff)',
            f'(format t "UTT {i}\\n")',
            _WORD_TIMES,
        ]
    script = out_dir / f"{voice}.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True)
    if run.returncode != 0 or "UTT 0" not in run.stdout:
        sys.exit(
            f"festival {festival_voice} failed (apt-get install {package}?): {run.stderr[-300:]}"
        )
    spoken: dict[int, list] = {}
    current = None
    for line in run.stdout.splitlines():
        if line.startswith("UTT "):
            current = spoken.setdefault(int(line.split()[1]), [])
        elif current is not None and len(parts := line.split()) == 3:
            current.append((parts[0], float(parts[1]), float(parts[2])))
    return [
        Spoken(voice, out_dir / f"{voice}-{i:04d}.wav", sentences[i], words)
        for i, words in sorted(spoken.items())
        if len(words) == len(sentences[i].split())
    ]


PATHS = ("forced", "greedy")
TIMES = ("frames", "moved")


def errors(
    model: Transcriber, spoken: list[Spoken]
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(start error, end error) in seconds of each word that has a counterpart, per path
    (``forced``, ``greedy``) and per timing: what ``word_timings`` gives (``moved``) and its
    words' bare emitting frames (``frames``). Each utterance's log-probs are computed once."""
    tokenizer = model.tokenizer
    found: dict[tuple[str, str], list[tuple[float, float]]] = {
        (path_kind, times): [] for path_kind in PATHS for times in TIMES
    }
    for utterance in spoken:
        waveform = load_audio(utterance.audio, model.sample_rate)
        log_probs = model.log_probs([waveform])[0]  # (T', V)
        seconds = waveform.shape[0] / model.sample_rate
        paths = {
            "forced": forced_align_path(
                log_probs, tokenizer.encode(utterance.text), tokenizer.blank_id
            ),
            "greedy": log_probs.argmax(dim=-1),
        }
        for (path_kind, times), pairs in found.items():
            shifts = {"start_lead": 0.0, "piece_tail": 0.0} if times == "frames" else {}
            words = word_timings(
                paths[path_kind], log_probs, tokenizer, model.frame_seconds, 0.0, seconds, **shifts
            )
            if len(words) != len(utterance.words):
                continue  # greedy dropped or split a word: no pairing
            pairs += [
                (w.start - s, w.end - e)
                for w, (_, s, e) in zip(words, utterance.words, strict=True)
            ]
    return found


def summary(pairs: list[tuple[float, float]]) -> str:
    """A table row's figures: words, then signed and absolute mean error and the share within
    50 ms, of starts and of ends."""
    if not pairs:
        return f"{0:>6} " + " ".join(f"{'-':>8}" for _ in range(6))
    starts, ends = [p[0] * 1000 for p in pairs], [p[1] * 1000 for p in pairs]

    def within(values: list[float]) -> float:
        return 100 * sum(abs(v) <= 50 for v in values) / len(values)

    cells = [
        statistics.mean(starts),
        statistics.mean(map(abs, starts)),
        within(starts),
        statistics.mean(ends),
        statistics.mean(map(abs, ends)),
        within(ends),
    ]
    return f"{len(pairs):>6} " + " ".join(
        f"{c:>+8.0f}" if i % 3 == 0 else f"{c:>8.0f}" for i, c in enumerate(cells)
    )


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        type=Path,
        help="a recognizer checkpoint; repeat for several (default: the shipped two)",
    )
    parser.add_argument("--sentences", type=Path, default=DEFAULT_SENTENCES, help="a manifest")
    parser.add_argument("--limit", type=int, default=60, help="sentences")
    parser.add_argument("--skip", type=int, default=0, help="the manifest's sentences to pass over")
    parser.add_argument("--voice", action="append", choices=sorted(VOICES), help="default: all")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="write every word's errors here")
    args = parser.parse_args()
    if shutil.which("festival") is None:
        sys.exit(
            "festival is not installed: apt-get install festival "
            + " ".join(p for _, p in VOICES.values())
        )
    if not args.sentences.is_file():
        sys.exit(f"{args.sentences}: no such manifest (build the corpus, or pass --sentences)")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    chosen = read_manifest(args.sentences)[args.skip : args.skip + args.limit]
    sentences = [normalize_text(u.text) for u in chosen]
    models = args.model or [default_recognizer_path(), char_recognizer_path()]

    with tempfile.TemporaryDirectory(prefix="word-times-") as tmp:
        spoken = {v: synthesize(sentences, v, Path(tmp)) for v in args.voice or list(VOICES)}
        print(
            f"sentences {args.skip + 1}-{args.skip + len(sentences)} of {args.sentences}; "
            + ", ".join(f"{v}: {len(s)} read" for v, s in spoken.items())
        )
        print("errors against festival's word boundaries, ms (negative: too early)\n")
        columns = ("start", "|start|", "≤50ms%", "end", "|end|", "≤50ms%")
        header = f"{'model':<18} {'path':<7} {'times':<7} {'voice':<8} {'words':>6} " + " ".join(
            f"{c:>8}" for c in columns
        )
        print(header)
        print("-" * len(header))
        results = {}
        for model_file in models:
            model = Transcriber.from_pretrained(
                model_file, device="cpu", decoding=DecoderConfig(kind="greedy")
            )
            name = Path(model_file).name
            by_voice = {v: errors(model, u) for v, u in spoken.items()}
            for path_kind in PATHS:
                for times in TIMES:
                    key = (path_kind, times)
                    every = [pair for found in by_voice.values() for pair in found[key]]
                    print(f"{name:<18} {path_kind:<7} {times:<7} {'all':<8} {summary(every)}")
                    for voice, found in by_voice.items():
                        results[f"{name}/{path_kind}/{times}/{voice}"] = found[key]
                for voice, found in by_voice.items():
                    row = summary(found[(path_kind, "moved")])
                    print(f"{name:<18} {path_kind:<7} {'moved':<7} {voice:<8} {row}")
            print(f"{'':<18} frame: {model.frame_seconds * 1000:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main()
