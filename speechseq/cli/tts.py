"""Text-to-speech commands: ``synthesize``, ``train tts`` and ``train vocoder``.

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
    refuse_to_replace,
    set_threads,
    sub_app,
    warnings_as_lines,
)
from speechseq.errors import SpeechseqError

app = sub_app()
train_app = sub_app()
tts_app = sub_app(
    help="Text-to-speech data: the durations a voice trains on.", no_args_is_help=True
)


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
    vocoder: Annotated[
        str | None,
        typer.Option(
            help="griffin-lim, or a vocoder checkpoint (speechseq train vocoder). Default: the "
            "voice's own (the shipped voice carries a neural vocoder; a voice without one uses "
            "griffin-lim).",
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
    speak = functools.partial(
        _speak,
        text=text,
        text_file=text_file,
        output_dir=output_dir,
        model=model,
        vocoder=vocoder,
        overwrite=overwrite,
        seed=seed,
        device=device,
        threads=threads,
    )
    if output == Path("-"):
        if sys.stdout.isatty():
            raise SpeechseqError("-o - writes WAV to standard output: pipe or redirect it")
        with tempfile.TemporaryDirectory(prefix="speechseq-") as folder:
            wav = Path(folder) / "stdout.wav"
            speak(wav, shown="-")
            with wav.open("rb") as audio:
                shutil.copyfileobj(audio, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return
    speak(output)


def _speak(
    output,
    text,
    text_file,
    output_dir,
    model,
    vocoder,
    overwrite,
    seed,
    device,
    threads,
    shown=None,
) -> None:
    """The synthesis itself; ``shown`` names the output in messages instead of its path."""
    from tqdm import tqdm

    from speechseq.tts.jobs import plan_synthesis, run_synthesis
    from speechseq.tts.speaker import Speaker

    plan = plan_synthesis(text, output, text_file, output_dir, overwrite)
    set_threads(threads)
    speaker = (
        Speaker.from_pretrained(model, device=device, seed=seed, vocoder=vocoder)
        if plan.todo
        else None
    )
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


@train_app.command("vocoder", context_settings=TRAIN_CONTEXT)
@friendly
def train_vocoder_command(
    ctx: typer.Context,
    config: ConfigArgument,
    resume: ResumeOption = False,
    progress: ProgressOption = True,
) -> None:
    """Train a neural vocoder on a voice's recordings (data.predicted_mels: true fine-tunes it
    on the voice's own mels, from train.init_from). Extra arguments override the YAML:
    section.key=value or --section.key value (e.g. train.max_steps=100)."""
    from speechseq.config import parse_overrides
    from speechseq.tts.vocoder.train import load_vocoder_config, train_vocoder

    cfg = load_vocoder_config(config, parse_overrides(list(ctx.args)))
    with warnings_as_lines():
        best = train_vocoder(cfg, resume=resume, progress=progress)
    typer.echo(f"best checkpoint: {best}", err=True)


@tts_app.command("durations")
@friendly
def tts_durations(
    manifest: Annotated[Path, typer.Argument(help="Manifest of the voice's audio and text.")],
    output: Annotated[Path, typer.Argument(help="The durations file to write (JSONL).")],
    config: Annotated[
        Path,
        typer.Option(
            help="The voice's experiment YAML: its features and silence trimming decide the "
            "frames counted."
        ),
    ],
    recognizer: Annotated[
        Path | None,
        typer.Option(
            help="A character recognizer that knows the voice's language (default: the shipped "
            "asr-char.pt, English, synthetic voices only)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing durations file.")] = False,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
) -> None:
    """Measure how many frames each character of each utterance lasts, by CTC forced alignment,
    for a duration-based voice (model.kind: duration) to train on: data.train_durations and
    data.dev_durations in its YAML."""
    from speechseq.pretrained import char_recognizer_path
    from speechseq.tts.config import load_tts_config
    from speechseq.tts.durations import align_corpus

    refuse_to_replace(output, overwrite=overwrite)
    cfg = load_tts_config(config)
    set_threads(threads or cfg.train.num_threads)
    with warnings_as_lines():
        summary = align_corpus(
            manifest,
            output,
            recognizer or char_recognizer_path(),
            cfg.features,
            cfg.data.trim_db,
            cfg.data.trim_margin,
        )
    typer.echo(f"wrote {output}: " + ", ".join(f"{k} {v}" for k, v in summary.items()), err=True)
