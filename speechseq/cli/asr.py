"""Speech-to-text commands: ``transcribe``, ``evaluate`` and ``train asr``.

Each parses its arguments and calls the library (:mod:`speechseq.asr`); imports of torch and
the models happen inside the commands, so ``--help`` stays quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from speechseq.cli.common import (
    TRAIN_CONTEXT,
    BeamSizeOption,
    BeamTokensOption,
    ConfigArgument,
    DecoderKind,
    DecoderOption,
    LMOption,
    LMWeightOption,
    NoSpeechOption,
    ProgressOption,
    ResumeOption,
    WordBonusOption,
    decoding,
    friendly,
    refuse_to_replace,
    set_threads,
    sub_app,
    warnings_as_lines,
)
from speechseq.errors import SpeechseqError

app = sub_app()
train_app = sub_app()


class Engine(str, Enum):
    auto = "auto"
    torch = "torch"


class OutputFormat(str, Enum):
    txt = "txt"
    json = "json"
    srt = "srt"
    vtt = "vtt"
    tsv = "tsv"
    all = "all"


@contextlib.contextmanager
def _stdin_audio(inputs: list[str]):
    """``-`` among the inputs: standard input's bytes, saved to a temporary file named
    ``stdin`` (transcripts: ``OUT/stdin.*``). Yields the inputs with ``-`` replaced, and the
    labels that call that file ``-`` again in results and errors."""
    if "-" not in inputs:
        yield inputs, {}
        return
    if sys.stdin.isatty():
        raise SpeechseqError("'-' reads audio from standard input, but nothing is piped in")
    data = sys.stdin.buffer.read()
    if not data:
        raise SpeechseqError("standard input ('-'): no audio came in")
    with tempfile.TemporaryDirectory(prefix="speechseq-") as folder:
        path = Path(folder) / "stdin"
        path.write_bytes(data)
        yield [str(path) if i == "-" else i for i in inputs], {str(path): "-"}


def _progress(total: int):
    """A progress bar over files that also shows audio hours done and speed (× real time)."""
    import time

    from tqdm import tqdm

    bar = tqdm(total=total, unit="file", file=sys.stderr, disable=None if total > 5 else True)
    started, audio = time.perf_counter(), 0.0

    def update(result) -> None:
        nonlocal audio
        audio += result.duration
        speed = audio / max(1e-9, time.perf_counter() - started)
        bar.set_postfix_str(f"{audio / 3600:.2f} h audio, {speed:.0f}× real time", refresh=False)
        bar.update(1)

    return bar, update


@app.command()
@friendly
def transcribe(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Audio files, folders (searched recursively) or globs; - reads one file from "
            "standard input."
        ),
    ],
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Checkpoint (default: the shipped model).")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Write transcript files here (folders mirrored) instead of printing "
            "PATH<TAB>TEXT lines; a re-run skips inputs whose files all exist.",
        ),
    ] = None,
    fmt: Annotated[
        list[OutputFormat],
        typer.Option(
            "--format",
            "-f",
            help="Transcript format; repeat for several, or all (with --output-dir). Without "
            "--output-dir, one format other than txt is printed: json as one line per input.",
        ),
    ] = [OutputFormat.txt],  # noqa: B006 (typer reads the default; it is never mutated)
    overwrite: Annotated[
        bool, typer.Option(help="Redo inputs whose transcript files exist (default: skip them).")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Append one JSON line per input (status, duration, seconds, error) here "
            "(default: OUTPUT_DIR/report.jsonl with --output-dir, else none)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes reading and featurizing audio ahead of the network (0: the main "
            "one does it between batches). Default: 0 on up to 2 CPUs, where a worker slows "
            "the network's threads more than it saves, else 1.",
        ),
    ] = None,
    batch_seconds: Annotated[
        float,
        typer.Option(help="Padded audio seconds per batch (bounds memory; 2 run at once)."),
    ] = 300.0,
    segment_seconds: Annotated[
        float, typer.Option(help="Longer audio is cut at pauses into pieces this long at most.")
    ] = 30.0,
    max_line_width: Annotated[
        int, typer.Option(help="Subtitles (srt, vtt): characters per line; 0 = no limit.")
    ] = 42,
    max_line_count: Annotated[
        int, typer.Option(help="Subtitles: lines per cue; 0 = no limit (a cue per segment).")
    ] = 2,
    max_words_per_line: Annotated[
        int, typer.Option(help="Subtitles: words per line; 0 = no limit.")
    ] = 0,
    decoder: DecoderOption = DecoderKind.auto,
    beam_size: BeamSizeOption = None,
    lm: LMOption = None,
    lm_weight: LMWeightOption = None,
    word_bonus: WordBonusOption = None,
    beam_tokens: BeamTokensOption = None,
    no_speech_threshold: NoSpeechOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads: torch's (default: every CPU), or ONNX Runtime's on a short job "
            "(default 1: it starts sooner than a pool of every core)."
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="auto: a short job (files of at most --segment-seconds at the model's rate, 2 "
            "minutes in all; the shipped model or an ONNX file; on a CPU) runs in ONNX Runtime "
            "without loading torch, which starts in a second where torch alone takes 2; the "
            "rest runs in torch. torch: always torch (int8 kernels, batches)."
        ),
    ] = Engine.auto,
    shard: Annotated[
        str | None,
        typer.Option(
            help="Do only part K of N (K from 0) of the inputs, e.g. for a SLURM array task; "
            "under torchrun each rank takes its part of that."
        ),
    ] = None,
) -> None:
    """Transcribe audio files of any length, with word times; exits 1 if any input failed
    (each failure is named on stderr). Under torchrun the ranks split the inputs. A short job
    (a few files of up to SEGMENT_SECONDS at the model's rate, 2 minutes in all, with the
    shipped model or an ONNX one, on a CPU) runs without loading torch, to start in a second."""
    from speechseq.asr import jobs, shards
    from speechseq.asr.lite import lite_transcriber
    from speechseq.asr.writers import SubtitleOptions, render

    formats = [f.value for f in fmt]
    printed = formats[0] if len(formats) == 1 else ""
    if output_dir is None and (not printed or printed == "all"):
        raise SpeechseqError("several formats need --output-dir; without it, give one -f")
    jobs.flat_malloc()
    part, parts = shards.parse_shard(shard) if shard else (0, 1)
    part, parts, device = shards.join_ranks(part, parts, device)
    chosen = decoding(
        decoder, beam_size, lm, lm_weight, word_bonus, beam_tokens, no_speech_threshold
    )
    with _stdin_audio(inputs) as (inputs, labels):
        plan = jobs.plan_job(inputs, output_dir, formats, overwrite, (part, parts))
        plan.labels = labels
        paths = [job.input for job in plan.todo]
        transcriber = None
        if parts == 1 and engine == Engine.auto:
            transcriber = lite_transcriber(model, paths, chosen, device, threads, segment_seconds)
        main_rank = True
        if transcriber is None:  # torch
            from speechseq import distributed
            from speechseq.asr.transcriber import Transcriber

            set_threads(threads)
            transcriber = Transcriber.from_pretrained(
                model,
                device=device,
                max_batch_seconds=batch_seconds,
                max_segment_seconds=segment_seconds,
                decoding=chosen,
            )
            main_rank = distributed.is_main()
        report = shards.report_path(report, output_dir, part, parts)
        options = SubtitleOptions(
            max_line_width=max_line_width or None,
            max_line_count=max_line_count or None,
            max_words_per_line=max_words_per_line or None,
        )
        todo = {plan.labels.get(str(path), str(path)) for path in paths}
        bar, progress = _progress(len(todo) if main_rank else 0)  # 0: no bar

        def on_result(result) -> None:
            if result.truncated:
                bar.write(
                    f"warning: {result.truncated}; transcribed what it holds", file=sys.stderr
                )
            if not result.ok:
                bar.write(f"error: {result.error}", file=sys.stderr)
            elif output_dir is None and printed == "txt":
                bar.write(f"{result.path}\t{result.text}", file=sys.stdout)
            elif output_dir is None:
                bar.write(render(result, printed, options).rstrip("\n"), file=sys.stdout)
            if result.path in todo:  # not an input that named nothing
                progress(result)

        if workers is None:
            workers = 0 if len(os.sched_getaffinity(0)) <= 2 else 1
        summary = jobs.run_job(transcriber, plan, report, options, workers, on_result)
        bar.close()
    line = str(summary)
    if summary.skipped:
        line += " (transcripts exist; --overwrite to redo)"
    typer.echo(f"shard {part}/{parts}: {line}" if parts > 1 else line, err=True)
    total = jobs.total_over_ranks(summary)
    if total is not summary and main_rank:
        typer.echo(f"all ranks: {total}", err=True)
    if total.failed:
        raise typer.Exit(1)


@app.command()
@friendly
def evaluate(
    model: Annotated[
        Path,
        typer.Argument(help="Checkpoint to evaluate, or 'default' for the shipped recognizer."),
    ],
    manifest: Annotated[Path, typer.Argument(help="JSONL manifest with reference texts.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write per-utterance results (JSONL).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output file.")] = False,
    batch_seconds: Annotated[float, typer.Option(help="Padded audio seconds per batch.")] = 300.0,
    decoder: DecoderOption = DecoderKind.auto,
    beam_size: BeamSizeOption = None,
    lm: LMOption = None,
    lm_weight: LMWeightOption = None,
    word_bonus: WordBonusOption = None,
    beam_tokens: BeamTokensOption = None,
    no_speech_threshold: NoSpeechOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
) -> None:
    """Print WER, CER and real-time factor of MODEL on MANIFEST (--decoder auto: the model's
    tuned decoder if it has one, else greedy; --decoder greedy|beam to choose)."""
    from tqdm import tqdm

    from speechseq.asr.evaluation import evaluate as score
    from speechseq.asr.transcriber import Transcriber
    from speechseq.data import read_manifest
    from speechseq.files import write_text_atomic

    refuse_to_replace(output, overwrite=overwrite)
    set_threads(threads)
    utterances = read_manifest(manifest)
    if not utterances:
        raise SpeechseqError(f"{manifest}: holds no utterances")
    transcriber = Transcriber.from_pretrained(
        model,
        device=device,
        max_batch_seconds=batch_seconds,
        decoding=decoding(
            decoder, beam_size, lm, lm_weight, word_bonus, beam_tokens, no_speech_threshold
        ),
    )
    with tqdm(total=len(utterances), unit="utt", file=sys.stderr, disable=None) as bar:
        result = score(transcriber, utterances, on_result=lambda _: bar.update(1))
    typer.echo(f"utterances  {len(utterances)}")
    typer.echo(f"audio       {result.audio_seconds / 60:.1f} min")
    typer.echo(f"WER         {100 * result.wer:.2f} %")
    typer.echo(f"CER         {100 * result.cer:.2f} %")
    typer.echo(f"RTF         {result.real_time_factor:.4f}")
    if output is not None:
        lines = (json.dumps(u, ensure_ascii=False) + "\n" for u in result.utterances)
        write_text_atomic(output, "".join(lines))


@train_app.command("asr", context_settings=TRAIN_CONTEXT)
@friendly
def train_asr_command(
    ctx: typer.Context,
    config: ConfigArgument,
    resume: ResumeOption = False,
    progress: ProgressOption = True,
) -> None:
    """Train a BiGRU-CTC recognizer. Extra arguments override the YAML:
    section.key=value or --section.key value (e.g. train.epochs=5 --model.hidden_size 128)."""
    from speechseq import distributed
    from speechseq.asr.config import load_asr_config
    from speechseq.asr.train import train_asr
    from speechseq.config import parse_overrides

    cfg = load_asr_config(config, parse_overrides(list(ctx.args)))
    with warnings_as_lines():
        best = train_asr(cfg, resume=resume, progress=progress)  # under torchrun: every rank
    if distributed.is_main():
        typer.echo(f"best checkpoint: {best}", err=True)
