"""The ``speechseq`` command line: commands parse arguments and call the library, nothing more.

Run ``speechseq --help`` (or ``python -m speechseq --help``) for the list.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from speechseq.errors import SpeechseqError

app = typer.Typer(
    help="speechseq: train, evaluate and run recurrent speech recognizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build and prepare data manifests.", no_args_is_help=True)
train_app = typer.Typer(help="Train models from a YAML experiment file.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _friendly(func):
    """Turn a SpeechseqError into one line on stderr and exit code 2, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SpeechseqError as err:
            raise _fail(str(err)) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None

    return wrapper


@contextlib.contextmanager
def _warnings_as_lines():
    """Show library warnings (skipped files, …) as plain ``warning: …`` lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                typer.echo(f"warning: {warning.message}", err=True)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


class OutputFormat(str, Enum):
    txt = "txt"
    json = "json"


def _output_path(out_dir: Path, file: Path, root: Path | None, fmt: str) -> Path:
    rel = file.relative_to(root) if root is not None else Path(file.name)
    return out_dir / rel.with_suffix(f".{fmt}")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@app.command()
@_friendly
def transcribe(
    inputs: Annotated[
        list[str], typer.Argument(help="Audio files, folders (searched recursively) or globs.")
    ],
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Checkpoint (default: the shipped model).")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Write one transcript file per input here "
            "(folders mirrored) instead of printing PATH<TAB>TEXT lines.",
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Transcript file format.")
    ] = OutputFormat.txt,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing transcript files (default: skip them).")
    ] = False,
    batch_seconds: Annotated[
        float, typer.Option(help="Padded audio seconds per batch (bounds memory).")
    ] = 300.0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
) -> None:
    """Transcribe audio files; exits 1 if any input failed (each failure is named on stderr)."""
    from tqdm import tqdm

    from speechseq.inference import Transcriber, expand_inputs

    _set_threads(threads)
    transcriber = Transcriber.from_pretrained(model, device=device, max_batch_seconds=batch_seconds)
    roots: dict[Path, Path | None] = {}
    for item in inputs:
        if Path(item).is_dir():
            for f in Path(item).rglob("*"):
                roots.setdefault(f, Path(item))
    files, failures = expand_inputs(inputs)
    for failure in failures:
        typer.echo(f"error: {failure.error}", err=True)

    skipped = 0
    todo = []
    for f in files:
        if output_dir is not None:
            target = _output_path(output_dir, f, roots.get(f), fmt.value)
            if target.exists() and not overwrite:
                skipped += 1
                continue
        todo.append(f)

    bar = tqdm(
        total=len(todo), unit="file", file=sys.stderr, disable=None if len(todo) > 5 else True
    )
    failed = len(failures)

    def on_result(result) -> None:
        nonlocal failed
        bar.update(1)
        if not result.ok:
            failed += 1
            bar.write(f"error: {result.error}", file=sys.stderr)
            return
        if output_dir is None:
            bar.write(f"{result.path}\t{result.text}", file=sys.stdout)
            return
        file = Path(result.path)
        target = _output_path(output_dir, file, roots.get(file), fmt.value)
        body = (
            json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"
            if fmt is OutputFormat.json
            else result.text + "\n"
        )
        _write_atomic(target, body)

    transcriber.transcribe(todo, on_result=on_result)
    bar.close()
    done = len(todo) - (failed - len(failures))
    if output_dir is not None or failed or skipped:
        summary = f"{done} transcribed, {failed} failed"
        if skipped:
            summary += f", {skipped} skipped (output exists; --overwrite to redo)"
        typer.echo(summary, err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
@_friendly
def evaluate(
    model: Annotated[Path, typer.Argument(help="Checkpoint to evaluate.")],
    manifest: Annotated[Path, typer.Argument(help="JSONL manifest with reference texts.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write per-utterance results (JSONL).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output file.")] = False,
    batch_seconds: Annotated[float, typer.Option(help="Padded audio seconds per batch.")] = 300.0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
) -> None:
    """Print WER, CER and real-time factor of MODEL (greedy decoding) on MANIFEST."""
    from tqdm import tqdm

    from speechseq.data import read_manifest
    from speechseq.inference import Transcriber

    if output is not None and output.exists() and not overwrite:
        raise SpeechseqError(f"{output}: exists; pass --overwrite to replace it")
    _set_threads(threads)
    utterances = read_manifest(manifest)
    if not utterances:
        raise SpeechseqError(f"{manifest}: holds no utterances")
    transcriber = Transcriber.from_pretrained(model, device=device, max_batch_seconds=batch_seconds)
    with tqdm(total=len(utterances), unit="utt", file=sys.stderr, disable=None) as bar:
        result = transcriber.evaluate(utterances, on_result=lambda _: bar.update(1))
    typer.echo(f"utterances  {len(utterances)}")
    typer.echo(f"audio       {result.audio_seconds / 60:.1f} min")
    typer.echo(f"WER         {100 * result.wer:.2f} %")
    typer.echo(f"CER         {100 * result.cer:.2f} %")
    typer.echo(f"RTF         {result.real_time_factor:.4f}")
    if output is not None:
        _write_atomic(
            output, "".join(json.dumps(u, ensure_ascii=False) + "\n" for u in result.utterances)
        )


@data_app.command("manifest")
@_friendly
def data_manifest(
    folder: Annotated[Path, typer.Argument(help="Folder of audio files with same-stem .txt.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Default: FOLDER/manifest.jsonl.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing manifest.")] = False,
    raw_text: Annotated[
        bool, typer.Option(help="Keep transcripts as written (default: normalise them).")
    ] = False,
) -> None:
    """Build a JSONL manifest from a folder of audio files and same-stem .txt transcripts."""
    from speechseq.data import manifest_from_folder, write_manifest

    output = output or folder / "manifest.jsonl"
    if output.exists() and not overwrite:
        raise SpeechseqError(f"{output}: exists; pass --overwrite to replace it")
    with _warnings_as_lines():
        utterances = manifest_from_folder(folder, normalize=not raw_text)
    write_manifest(utterances, output)
    hours = sum(u.duration for u in utterances) / 3600
    typer.echo(f"wrote {output}: {len(utterances)} utterances, {hours:.2f} h", err=True)


class DatasetName(str, Enum):
    librispeech = "librispeech"
    ljspeech = "ljspeech"
    commonvoice = "commonvoice"
    folder = "folder"


@data_app.command("prepare")
@_friendly
def data_prepare(
    name: Annotated[DatasetName, typer.Argument(help="Which dataset layout ROOT has.")],
    root: Annotated[Path, typer.Argument(help="The dataset as unpacked on disk.")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the JSONL manifests.")],
    overwrite: Annotated[
        bool, typer.Option(help="Rebuild manifests that exist (default: keep them).")
    ] = False,
) -> None:
    """Write manifests for a public dataset you have on disk (nothing is downloaded).

    librispeech: one manifest per subset; ljspeech: all + train/dev/test; commonvoice: one per
    train/dev/test/validated TSV; folder: audio files with same-stem .txt transcripts.
    """
    from speechseq.data import read_manifest
    from speechseq.data.preparers import PREPARERS

    with _warnings_as_lines():
        manifests = PREPARERS[name.value](root, out_dir, overwrite=overwrite)
    for part, path in manifests.items():
        utts = read_manifest(path)
        hours = sum(u.duration for u in utts) / 3600
        typer.echo(f"{part}\t{path}\t{len(utts)} utterances\t{hours:.2f} h")


@train_app.command(
    "asr", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@_friendly
def train_asr_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="YAML experiment file.")],
    resume: Annotated[
        bool, typer.Option(help="Continue the run in train.out_dir from its last.pt.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a BiGRU-CTC recognizer. Extra arguments override the YAML:
    section.key=value or --section.key value (e.g. train.epochs=5 --model.hidden_size 128)."""
    from speechseq.config import load_asr_config, parse_overrides
    from speechseq.training import train_asr

    cfg = load_asr_config(config, parse_overrides(list(ctx.args)))
    best = train_asr(cfg, resume=resume, progress=progress)
    typer.echo(f"best checkpoint: {best}", err=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
