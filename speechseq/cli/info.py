"""``speechseq info``: what a checkpoint is, and what made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from speechseq.cli.common import friendly, sub_app

app = sub_app()


@app.command()
@friendly
def info(
    model: Annotated[
        Path,
        typer.Argument(help="A checkpoint, or default, char or voice for the shipped ones."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print it all as one JSON object.")
    ] = False,
) -> None:
    """Print a checkpoint's kind, configs, units, parameter count, training progress and
    provenance (the speechseq, torch and Python versions and git commit that made it)."""
    from speechseq.checkpoint import describe_checkpoint
    from speechseq.pretrained import char_recognizer_path, recognizer_path, voice_path

    shipped = {"char": char_recognizer_path, "voice": lambda: voice_path(None)}
    name = str(model)
    path = shipped[name]() if name in shipped else recognizer_path(model)
    described = describe_checkpoint(path)
    if as_json:
        typer.echo(json.dumps(described, indent=2, default=str))
        return
    typer.echo(f"{described['path']}")
    typer.echo(f"  kind        {described['format']}: {described['kind']}")
    typer.echo(f"  parameters  {described['parameters'] / 1e6:.2f} M ({described['dtype']})")
    typer.echo(f"  units       {described['units']}")
    training = described["training"]
    typer.echo(
        "  training    "
        + (", ".join(f"{k} {v}" for k, v in training.items()) if training else "a release copy")
    )
    made = described["provenance"]
    typer.echo(
        "  made by     "
        + (", ".join(f"{k} {v}" for k, v in made.items()) if made else "not recorded")
    )
    vocoder = described["vocoder"]
    if vocoder is not None:
        typer.echo(
            f"  vocoder     {vocoder['kind']}, {vocoder['parameters'] / 1e6:.2f} M parameters "
            f"(its notes: {json.dumps(vocoder['meta'], default=str)})"
        )
    if described["meta"]:
        typer.echo("  notes       " + json.dumps(described["meta"], default=str))
    typer.echo("  model       " + json.dumps(described["model_config"]))
    typer.echo("  features    " + json.dumps(described["feature_config"]))
