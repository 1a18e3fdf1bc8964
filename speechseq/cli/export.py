"""``speechseq export``: release copies of checkpoints (float16 or int8), and ONNX."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path
from typing import Annotated

import typer

from speechseq.cli.common import friendly, refuse_to_replace, sub_app
from speechseq.errors import SpeechseqError

app = sub_app()


def _decoding_copies(model: Path, out: Path) -> list[tuple[Path, Path]]:
    """(source, target) copies that give OUT the tuned decoding of MODEL: its
    ``MODEL.decoding.json`` and the LM that names, when that is not beside OUT already."""
    import json

    from speechseq.asr.decoding import decoding_path

    source, target = decoding_path(model), decoding_path(out)
    if not source.is_file() or source.resolve() == target.resolve():
        return []
    copies = [(source, target)]
    lm = json.loads(source.read_text(encoding="utf-8")).get("lm")
    if lm:
        lm_in, lm_out = source.parent / lm, target.parent / lm
        if not lm_in.is_file():
            raise SpeechseqError(f"{lm_in}: no such file, yet {source} names it")
        same = lm_out.exists() and filecmp.cmp(lm_in, lm_out, shallow=False)
        if lm_in.resolve() != lm_out.resolve() and not same:
            copies.append((lm_in, lm_out))
    return copies


@app.command()
@friendly
def export(
    model: Annotated[
        Path,
        typer.Argument(help="A checkpoint (a training run's best.pt), or default, char, voice."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The release copy to write.")],
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="int8 weights for GRU, LSTM and linear layers (faster on a CPU, a quarter of "
            "their size); default: float16 (half the size, same speed as float32).",
        ),
    ] = False,
    float32: Annotated[
        bool,
        typer.Option(
            "--float32", help="Keep float32 weights (the same numbers as MODEL, twice the size)."
        ),
    ] = False,
    onnx: Annotated[
        bool,
        typer.Option(
            "--onnx",
            help="Also write the recognizer's network as ONNX (int8 weights stored as int8, "
            "computed in float32), OUTPUT with the suffix .onnx; it transcribes with --model, "
            "short jobs without torch. Exporting needs pip install 'speechseq[onnx]'.",
        ),
    ] = False,
    note: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE kept in the copy's notes for its model card (speechseq info shows "
            "them), e.g. --note teacher='flite slt'; repeatable."
        ),
    ] = None,
    vocoder: Annotated[
        Path | None,
        typer.Option(
            help="For a voice: a neural vocoder checkpoint (speechseq train vocoder) for the "
            "copy to carry and speak with by default."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace files that exist.")] = False,
) -> None:
    """Write a release copy of a recognizer or voice: weights, configs and tokenizer only (no
    optimizer or training state), and the model's tuned decoding (MODEL.decoding.json, and its
    LM) beside it. Measure the copy's error rates before shipping it: `speechseq evaluate`."""
    from speechseq.checkpoint import describe_checkpoint, export_checkpoint
    from speechseq.pretrained import char_recognizer_path, recognizer_path, voice_path

    shipped = {"char": char_recognizer_path, "voice": lambda: voice_path(None)}
    source = shipped[str(model)]() if str(model) in shipped else recognizer_path(model)
    onnx_out = output.with_suffix(".onnx")
    if onnx and onnx_out == output:
        raise SpeechseqError(f"{output}: name the checkpoint .pt; the ONNX file gets .onnx")
    fmt = describe_checkpoint(source)["format"]
    is_asr = fmt == "speechseq-asr"
    if vocoder is not None and fmt != "speechseq-tts":
        raise SpeechseqError(f"{source}: --vocoder goes with a voice")
    if onnx and not is_asr:
        raise SpeechseqError(f"{source}: --onnx exports recognizers only")
    # MODEL.decoding.json serves OUTPUT.pt and OUTPUT.onnx alike
    copies = _decoding_copies(source, output) if is_asr else []
    targets = [output, onnx_out if onnx else None, *(t for _, t in copies)]
    refuse_to_replace(*targets, overwrite=overwrite)
    pairs = [n.partition("=") for n in note or []]
    if any(not key or not sep for key, sep, _ in pairs):
        raise SpeechseqError("--note takes KEY=VALUE")
    notes: dict[str, object] = {key: value for key, _, value in pairs}
    if onnx:  # before anything is written
        from speechseq.asr.onnx import require

        require("onnx", "ONNX export")
    if int8 and float32:
        raise SpeechseqError("choose one of --int8 and --float32")
    precision = "int8" if int8 else "float32" if float32 else "float16"
    written = [export_checkpoint(source, output, precision=precision, vocoder=vocoder, **notes)]
    if onnx:
        from speechseq.asr.onnx import export_onnx

        written.append(export_onnx(source, onnx_out))
    for source_file, target in copies:
        shutil.copyfile(source_file, target)
        written.append(target)
    for path in written:
        typer.echo(f"wrote {path}", err=True)
