"""speechseq against PocketSphinx, side by side on the same test files: WER, CER, real-time factor.

    pip install -e ".[bench]"          # PocketSphinx (ships its own US English model and LM)
    python benchmarks/asr.py recipes/synthetic/asr/data/test_seen.jsonl \
        recipes/synthetic/asr/data/test_heldout.jsonl --per-voice --json bench-asr.json

    # a quick look, with a model of your own and 40 utterances a manifest
    python benchmarks/asr.py --model recipes/tiny/asr/exp/tiny/best.pt \
        recipes/tiny/asr/data/test.jsonl --limit 40 --threads 1

For each manifest these systems run one after another, never at the same time, on the same files:

- ``greedy``: the Transcriber in this process, greedy decoding (CPU); start-up = loading the
  checkpoint (torch is already imported by then).
- ``beam+LM``: the same with beam search and a word LM: ``--lm`` if given, else the LM and
  tuning shipped with the shipped model (``speechseq/pretrained/asr-default.decoding.json``);
  start-up includes loading the LM. Skipped for another model without ``--lm``.
- ``CLI greedy`` and ``CLI default``: ``speechseq transcribe FOLDER --model M --device cpu``
  as a subprocess, with ``--decoder greedy`` and with the default decoder (beam + LM for the
  shipped model); the wall clock includes the interpreter, imports and model loading: the
  "start-up included" figures. The CLI is given the manifest's folder when the manifest holds
  every audio file under it, else the files themselves (as with --limit).
- ``PocketSphinx``: its default en-us acoustic model, dictionary and language model, fed 16 kHz
  mono int16 samples one whole utterance at a time; start-up = ``Decoder()`` (plus the
  import, for the first manifest).

Each system's time runs from before its start-up to after its last hypothesis, audio reading and
resampling included; RTF = seconds / audio seconds (durations from the manifest). Both sides'
texts go through ``speechseq.text.normalize_text`` before corpus WER and CER are counted.
The voice of an utterance is the name of its audio file's folder: the synthetic corpus lays files
out as ``wav/<split>/<voice>/<id>.wav`` (a flat corpus such as the tiny one shows one "voice"),
and its voice folders are named ``<synthesizer>-<voice>``, which --per-voice also sums over.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechseq.asr.decoding import DecoderConfig, resolve_decoding, tuned_decoding
from speechseq.asr.jobs import expand_inputs
from speechseq.asr.transcriber import Transcriber
from speechseq.audio import load_audio
from speechseq.data.manifest import Utterance, read_manifest
from speechseq.errors import SpeechseqError
from speechseq.metrics import error_counts
from speechseq.pretrained import default_recognizer_path
from speechseq.text import normalize_text

POCKETSPHINX_RATE = 16000  # the rate of its default en-us acoustic model
TARGET_RTF = 0.02  # the issue's bar for `speechseq transcribe`, start-up included


@dataclass
class SystemRun:
    """One system's pass over one manifest."""

    name: str
    hypotheses: list[str]
    seconds: float
    startup_seconds: float | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def score(self, references: Sequence[str]) -> None:
        self.hypotheses = [normalize_text(h) for h in self.hypotheses]
        self.counts = error_counts(references, self.hypotheses)

    @property
    def wer(self) -> float:
        return self.counts["word_errors"] / max(1, self.counts["words"])

    @property
    def cer(self) -> float:
        return self.counts["char_errors"] / max(1, self.counts["chars"])


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="WER, CER and real-time factor of speechseq and PocketSphinx on the same files."
    )
    parser.add_argument("manifests", nargs="+", type=Path, help="JSONL test manifests.")
    parser.add_argument(
        "--model", type=Path, default=None, help="Checkpoint (default: the shipped model)."
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="Only the first N utterances of each manifest."
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="Torch CPU threads (here and in the CLI run)."
    )
    parser.add_argument(
        "--lm",
        type=Path,
        default=None,
        help="Word LM for the beam+LM rows (default: the LM shipped with the shipped model).",
    )
    parser.add_argument("--lm-weight", type=float, default=1.0, help="With --lm.")
    parser.add_argument("--word-bonus", type=float, default=0.0, help="With --lm.")
    parser.add_argument("--per-voice", action="store_true", help="Also print a table per voice.")
    parser.add_argument("--no-pocketsphinx", action="store_true", help="Skip PocketSphinx.")
    parser.add_argument("--json", type=Path, default=None, help="Write every figure here.")
    return parser


def voice_of(audio: str) -> str:
    return Path(audio).parent.name


def warm_file_cache(utterances: Sequence[Utterance]) -> None:
    # Whichever system ran first would otherwise pay for cold disk reads on the others' behalf.
    for utt in utterances:
        Path(utt.audio).read_bytes()


def run_speechseq(
    name: str, model: Path, utterances: Sequence[Utterance], decoding: DecoderConfig
) -> SystemRun:
    started = time.perf_counter()
    transcriber = Transcriber.from_pretrained(model, device="cpu", decoding=decoding)
    loaded = time.perf_counter()
    results = transcriber.transcribe([u.audio for u in utterances])
    finished = time.perf_counter()
    failed = [r for r in results if not r.ok]
    if failed:
        raise SpeechseqError(f"{name}: {failed[0].error}")
    return SystemRun(name, [r.text for r in results], finished - started, loaded - started)


def _cli_command() -> list[str]:
    # The console script beside this interpreter, so the CLI run uses this very installation.
    script = Path(sys.executable).parent / "speechseq"
    if script.is_file():
        return [str(script)]
    found = shutil.which("speechseq")
    return [found] if found else [sys.executable, "-m", "speechseq"]


def _cli_inputs(utterances: Sequence[Utterance]) -> list[str]:
    """The utterances' common folder if it holds exactly these files, else the files."""
    audio = [str(Path(u.audio).resolve()) for u in utterances]
    folder = os.path.commonpath(audio)
    if Path(folder).is_dir():
        found, _ = expand_inputs([folder])
        if {str(Path(str(f)).resolve()) for f in found} == set(audio):
            return [folder]
    return audio


def run_speechseq_cli(
    name: str,
    model: Path,
    utterances: Sequence[Utterance],
    threads: int | None,
    decoder_options: Sequence[str],
) -> tuple[SystemRun, list[str]]:
    inputs = _cli_inputs(utterances)
    options = ["--model", str(model), "--device", "cpu", *decoder_options]
    if threads:
        options += ["--threads", str(threads)]
    command = [*_cli_command(), "transcribe", *inputs, *options]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        raise SpeechseqError(f"speechseq CLI exited {proc.returncode}: {' / '.join(tail)}")
    by_path = {}
    for line in proc.stdout.splitlines():
        path, _, text = line.partition("\t")
        by_path[str(Path(path).resolve())] = text
    missing = [u.audio for u in utterances if str(Path(u.audio).resolve()) not in by_path]
    if missing:
        raise SpeechseqError(f"speechseq CLI printed no transcript for {missing[0]}")
    texts = [by_path[str(Path(u.audio).resolve())] for u in utterances]
    shown = inputs if len(inputs) == 1 else [inputs[0], f"... ({len(inputs)} files)"]
    return SystemRun(name, texts, seconds), ["speechseq transcribe", *shown, *options]


def beam_decoding(args: argparse.Namespace, model: Path) -> DecoderConfig | None:
    """The beam + LM row's decoder, as ``speechseq transcribe`` would resolve it: --lm if
    given, else the tuning shipped for the shipped model, else none."""
    given = args.lm is not None
    wanted = DecoderConfig(
        kind="auto",
        lm=args.lm,
        lm_weight=args.lm_weight if given else None,
        word_bonus=args.word_bonus if given else None,
    )
    decoding = resolve_decoding(wanted, tuned_decoding(model))
    return decoding if decoding.kind == "beam" else None


def run_pocketsphinx(utterances: Sequence[Utterance]) -> SystemRun:
    started = time.perf_counter()
    # optional bench extra
    from pocketsphinx import Decoder  # pyright: ignore[reportMissingImports]

    decoder = Decoder(samprate=POCKETSPHINX_RATE, loglevel="FATAL")
    loaded = time.perf_counter()
    texts = []
    for utt in utterances:
        waveform = load_audio(utt.audio, POCKETSPHINX_RATE)  # (T,) float in [-1, 1]
        pcm = (waveform.clamp(-1.0, 1.0) * 32767.0).round().to(torch.int16).numpy().tobytes()
        decoder.start_utt()
        # full_utt: the whole utterance is here, so cepstral mean normalisation sees all of it.
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        texts.append(hyp.hypstr if hyp is not None else "")
    finished = time.perf_counter()
    return SystemRun("PocketSphinx", texts, finished - started, loaded - started)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "n/a"


def synthesizer_of(audio: str) -> str:
    # Voice folders are named <synthesizer>-<voice> (espeak-en-us-f1, flite-slt, festival-kal).
    return voice_of(audio).split("-")[0]


def per_group(
    utterances: Sequence[Utterance],
    references: Sequence[str],
    runs: Sequence[SystemRun],
    group_of: Callable[[str], str],
) -> dict[str, dict]:
    """Corpus WER and CER of each run over each group of utterances (voice, synthesizer)."""
    indices: dict[str, list[int]] = {}
    for i, utt in enumerate(utterances):
        indices.setdefault(group_of(utt.audio), []).append(i)
    table = {}
    for voice in sorted(indices):
        idx = indices[voice]
        row = {
            "utterances": len(idx),
            "audio_seconds": sum(utterances[i].duration for i in idx),
        }
        for run in runs:
            c = error_counts([references[i] for i in idx], [run.hypotheses[i] for i in idx])
            row[run.name] = {
                "wer": c["word_errors"] / max(1, c["words"]),
                "cer": c["char_errors"] / max(1, c["chars"]),
                **c,
            }
        table[voice] = row
    return table


def print_table(title: str, runs: Sequence[SystemRun], audio_seconds: float) -> None:
    print(f"\n== {title} ==")
    header = (
        f"{'system':<15} {'WER %':>7} {'CER %':>7} {'RTF':>8} {'× real time':>12} "
        f"{'start-up s':>11} {'total s':>9}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        rtf = run.seconds / audio_seconds
        startup = f"{run.startup_seconds:.2f}" if run.startup_seconds is not None else "-"
        print(
            f"{run.name:<15} {100 * run.wer:>7.1f} {100 * run.cer:>7.1f} {rtf:>8.4f} "
            f"{1 / rtf:>12.1f} {startup:>11} {run.seconds:>9.2f}"
        )


def print_per_group(label: str, table: dict[str, dict], names: Sequence[str]) -> None:
    header = f"{label:<28} {'utts':>5} {'audio s':>8}" + "".join(
        f" {name + ' WER %':>{len(name) + 6}} {'CER %':>6}" for name in names
    )
    print(header)
    print("-" * len(header))
    for voice, row in table.items():
        cells = "".join(
            f" {100 * row[name]['wer']:>{len(name) + 6}.1f} {100 * row[name]['cer']:>6.1f}"
            for name in names
        )
        print(f"{voice:<28} {row['utterances']:>5} {row['audio_seconds']:>8.1f}{cells}")


def machine_info() -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        from importlib.metadata import version

        info["pocketsphinx"] = version("pocketsphinx")
    except Exception:  # not installed: --no-pocketsphinx
        info["pocketsphinx"] = None
    return info


def benchmark_manifest(args: argparse.Namespace, model: Path, manifest: Path) -> dict:
    utterances = read_manifest(manifest)[: args.limit]
    if not utterances:
        raise SpeechseqError(f"{manifest}: no utterances")
    references = [normalize_text(u.text) for u in utterances]
    audio_seconds = sum(u.duration for u in utterances)
    warm_file_cache(utterances)

    greedy = DecoderConfig(kind="greedy")
    runs = [run_speechseq("greedy", model, utterances, greedy)]
    cli_runs = {}
    run, command = run_speechseq_cli(
        "CLI greedy", model, utterances, args.threads, ["--decoder", "greedy"]
    )
    cli_runs[run.name] = (run, command)
    beam = beam_decoding(args, model)
    if beam is not None:
        runs.append(run_speechseq("beam+LM", model, utterances, beam))
        run, command = run_speechseq_cli("CLI default", model, utterances, args.threads, [])
        cli_runs[run.name] = (run, command)
    runs += [run for run, _ in cli_runs.values()]
    if not args.no_pocketsphinx:
        runs.append(run_pocketsphinx(utterances))
    for run in runs:
        run.score(references)
    by_name = {run.name: run for run in runs}

    title = f"{manifest}: {len(utterances)} utterances, {audio_seconds:.1f} s of audio"
    print_table(title, runs, audio_seconds)
    for _, command in cli_runs.values():
        print(f"CLI run: {' '.join(command)}")
    if beam is not None:
        ours = by_name["beam+LM"]
        cut = 1 - ours.wer / by_name["greedy"].wer if by_name["greedy"].wer > 0 else 0.0
        used = beam.filled()
        print(
            f"beam+LM (lm_weight {used.lm_weight}, word_bonus {used.word_bonus}, beam "
            f"{used.beam_size}) against greedy: WER {100 * cut:+.1f} % relative cut"
        )
    ratios = {}
    if not args.no_pocketsphinx:
        sphinx = by_name["PocketSphinx"]
        for name in ("greedy", "beam+LM"):
            if name in by_name:
                ours = by_name[name]
                ratios[name] = {
                    "wer": _ratio(sphinx.wer, ours.wer),
                    "cer": _ratio(sphinx.cer, ours.cer),
                    "rtf": _ratio(sphinx.seconds, ours.seconds),
                }
                r = ratios[name]
                print(
                    f"PocketSphinx / speechseq {name}: WER {_times(r['wer'])}, "
                    f"CER {_times(r['cer'])}, time {_times(r['rtf'])}"
                )
    for name, (cli, _) in cli_runs.items():
        cli_rtf = cli.seconds / audio_seconds
        verdict = f"speechseq {name} RTF {cli_rtf:.4f} {'≤' if cli_rtf <= TARGET_RTF else '>'} "
        verdict += f"target {TARGET_RTF}"
        if not args.no_pocketsphinx:
            faster = cli.seconds < by_name["PocketSphinx"].seconds
            verdict += f"; {'faster' if faster else 'not faster'} than PocketSphinx"
            verdict += f" ({_times(_ratio(by_name['PocketSphinx'].seconds, cli.seconds))})"
        print(verdict)
    cli_command = [command for _, command in cli_runs.values()]

    voices = per_group(utterances, references, runs, voice_of)
    synthesizers = per_group(utterances, references, runs, synthesizer_of)
    if args.per_voice:
        names = [r.name for r in runs if r.name not in cli_runs]  # CLI: same texts as in-process
        print()
        print_per_group("voice", voices, names)
        if len(synthesizers) > 1:
            print()
            print_per_group("synthesizer", synthesizers, names)

    return {
        "manifest": str(manifest),
        "utterances": len(utterances),
        "audio_seconds": audio_seconds,
        "cli_commands": cli_command,
        "beam": None if beam is None else vars(beam) | {"lm": str(beam.lm)},
        "systems": {
            run.name: {
                "wer": run.wer,
                "cer": run.cer,
                "seconds": run.seconds,
                "startup_seconds": run.startup_seconds,
                "real_time_factor": run.seconds / audio_seconds,
                "times_real_time": audio_seconds / run.seconds,
                **run.counts,
            }
            for run in runs
        },
        "ratios_pocketsphinx_over_speechseq": ratios,
        "per_voice": voices,
        "per_synthesizer": synthesizers,
        "hypotheses": [
            {"audio": u.audio, "reference": ref, **{r.name: r.hypotheses[i] for r in runs}}
            for i, (u, ref) in enumerate(zip(utterances, references, strict=True))
        ],
    }


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    for manifest in args.manifests:  # before the first long run, not after it
        if not manifest.is_file():
            raise SpeechseqError(f"{manifest}: no such manifest")
    model = args.model or default_recognizer_path()
    if not Path(model).is_file():
        raise SpeechseqError(f"{model}: no such checkpoint")
    if not args.no_pocketsphinx:
        try:
            # optional bench extra
            import pocketsphinx  # noqa: F401  # pyright: ignore[reportMissingImports]
        except ImportError:
            raise SpeechseqError(
                'PocketSphinx is not installed: pip install -e ".[bench]" '
                "(or pip install pocketsphinx), or pass --no-pocketsphinx"
            ) from None

    machine = machine_info()
    print(
        f"machine: {machine['cpu_count']} CPUs, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), pocketsphinx {machine['pocketsphinx']}, "
        f"python {machine['python']}, load average {machine['load_average']}"
    )
    print(f"model: {model}")
    report = {"machine": machine, "model": str(model), "manifests": []}
    for manifest in args.manifests:
        report["manifests"].append(benchmark_manifest(args, Path(model), manifest))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        run(args)
    except SpeechseqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
