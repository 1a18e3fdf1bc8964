"""Text-to-speech commands: ``synthesize`` and ``train tts``.

Each parses its arguments and calls the library (:mod:`speechseq.tts`).
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from speechseq.cli.common import (
    TRAIN_CONTEXT,
    ConfigArgument,
    ProgressOption,
    ResumeOption,
    friendly,
    set_threads,
    sub_app,
    warnings_as_lines,
)
from speechseq.errors import SpeechseqError

app = sub_app()
train_app = sub_app()


@app.command()
@friendly
def synthesize(
    text: Annotated[str | None, typer.Argument(help="The text to speak (quote it).")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Audio file to write, for TEXT; - writes WAV to standard output."
        ),
    ] = None,
    text_file: Annotated[
        Path | None,
        typer.Option(
            help="Speak each non-blank line of this file (-: standard input) into its own file "
            "instead."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            help="For --text-file: write line N to OUTPUT_DIR/NNNN.wav; files that exist are "
            "skipped (a re-run finishes a killed job)."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", "-m", help="Text-to-speech checkpoint (default: the shipped voice)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace audio files that exist.")] = False,
    seed: Annotated[
        int, typer.Option(help="Seeds the randomness kept at inference: same seed, same audio.")
    ] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
) -> None:
    """Speak TEXT into a file (-o out.wav), or each line of --text-file into --output-dir.
    Long text is split into sentences, joined with short pauses."""
    if output == Path("-"):
        if sys.stdout.isatty():
            raise SpeechseqError("-o - writes WAV to standard output: pipe or redirect it")
        with tempfile.TemporaryDirectory(prefix="speechseq-") as folder:
            wav = Path(folder) / "stdout.wav"
            _speak(text, wav, text_file, output_dir, model, overwrite, seed, device, threads, "-")
            with wav.open("rb") as audio:
                shutil.copyfileobj(audio, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return
    _speak(text, output, text_file, output_dir, model, overwrite, seed, device, threads)


def _speak(
    text, output, text_file, output_dir, model, overwrite, seed, device, threads, shown=None
) -> None:
    """The synthesis itself; ``shown`` names the output in messages instead of its path."""
    from tqdm import tqdm

    from speechseq.tts.jobs import plan_synthesis, run_synthesis
    from speechseq.tts.speaker import Speaker

    plan = plan_synthesis(text, output, text_file, output_dir, overwrite)
    set_threads(threads)
    speaker = Speaker.from_pretrained(model, device=device, seed=seed) if plan.todo else None
    sentences = sum(len(speaker.sentences(line)) for line, _ in plan.todo) if speaker else 0
    # a bar over sentences, for long lines and many lines
    bar = tqdm(
        total=sentences, unit="sentence", file=sys.stderr, disable=None if sentences > 5 else True
    )

    def written(path: Path, result) -> None:
        path = shown or path
        for i, ended in enumerate(result.stopped):
            if not ended:
                bar.write(
                    f"warning: {path}: sentence {i + 1} reached the length limit without "
                    "stopping; its end may be garbled",
                    file=sys.stderr,
                )
        rtf = result.seconds / max(1e-9, result.duration)
        bar.write(
            f"wrote {path}: {result.duration:.2f} s of audio (RTF {rtf:.3f})", file=sys.stderr
        )

    if speaker is not None:
        run_synthesis(speaker, plan, written, on_sentence=functools.partial(bar.update, 1))
    bar.close()
    if plan.skipped:
        typer.echo(
            f"{len(plan.todo)} written, {plan.skipped} skipped (files exist; --overwrite to redo)",
            err=True,
        )


@train_app.command("tts", context_settings=TRAIN_CONTEXT)
@friendly
def train_tts_command(
    ctx: typer.Context,
    config: ConfigArgument,
    resume: ResumeOption = False,
    progress: ProgressOption = True,
) -> None:
    """Train a voice (model.kind: duration, or attention for Tacotron-style). Extra arguments
    override the YAML:
    section.key=value or --section.key value (e.g. train.epochs=5 --model.reduction_factor 3)."""
    from speechseq.config import parse_overrides
    from speechseq.tts.config import load_tts_config
    from speechseq.tts.train import train_tts

    cfg = load_tts_config(config, parse_overrides(list(ctx.args)))
    with warnings_as_lines():
        best = train_tts(cfg, resume=resume, progress=progress)
    typer.echo(f"best checkpoint: {best}", err=True)
