"""``speechseq data``: build and prepare manifests."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from speechseq.cli.common import friendly, refuse_to_replace, sub_app, warnings_as_lines
from speechseq.errors import SpeechseqError

app = sub_app(help="Build and prepare data manifests.", no_args_is_help=True)


@app.command("manifest")
@friendly
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
    refuse_to_replace(output, overwrite=overwrite)
    with warnings_as_lines():
        utterances = manifest_from_folder(folder, normalize=not raw_text)
    write_manifest(utterances, output)
    hours = sum(u.duration for u in utterances) / 3600
    typer.echo(f"wrote {output}: {len(utterances)} utterances, {hours:.2f} h", err=True)


class DatasetName(str, Enum):
    librispeech = "librispeech"
    ljspeech = "ljspeech"
    commonvoice = "commonvoice"
    folder = "folder"


@app.command("prepare")
@friendly
def data_prepare(
    name: Annotated[DatasetName, typer.Argument(help="Which dataset layout ROOT has.")],
    root: Annotated[Path, typer.Argument(help="The dataset as unpacked on disk.")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the JSONL manifests.")],
    overwrite: Annotated[
        bool, typer.Option(help="Rebuild manifests that exist (default: keep them).")
    ] = False,
    dev_size: Annotated[
        int | None,
        typer.Option(
            min=0, help="ljspeech and folder: utterances in the dev split (ljspeech: 100)."
        ),
    ] = None,
    test_size: Annotated[
        int | None,
        typer.Option(
            min=0, help="ljspeech and folder: utterances in the test split (ljspeech: 500)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="ljspeech and folder: seeds the split.")] = 0,
) -> None:
    """Write manifests for a public dataset you have on disk (nothing is downloaded).

    librispeech: one manifest per subset; ljspeech: all + train/dev/test; commonvoice: one per
    train/dev/test/validated TSV; folder: audio files with same-stem .txt transcripts (all, and
    train/dev/test with --dev-size/--test-size). A changed split needs --overwrite.
    """
    from speechseq.data import read_manifest
    from speechseq.data.preparers import PREPARERS

    sizes = {k: v for k, v in (("dev_size", dev_size), ("test_size", test_size)) if v is not None}
    if name.value in ("ljspeech", "folder"):
        sizes["seed"] = seed
    elif sizes:
        raise SpeechseqError(f"{name.value} comes with its own splits: drop --dev-size/--test-size")
    with warnings_as_lines():
        manifests = PREPARERS[name.value](root, out_dir, overwrite=overwrite, **sizes)
    for part, path in manifests.items():
        utts = read_manifest(path)
        hours = sum(u.duration for u in utts) / 3600
        typer.echo(f"{part}\t{path}\t{len(utts)} utterances\t{hours:.2f} h")
