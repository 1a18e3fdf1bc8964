"""``speechseq plot``: training curves as a PNG, for people without TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speechseq.cli.common import friendly, refuse_to_replace, sub_app

app = sub_app()


@app.command()
@friendly
def plot(
    metrics: Annotated[Path, typer.Argument(help="A run's metrics.jsonl.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The PNG to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing PNG.")] = False,
) -> None:
    """Draw a training run's curves (losses, learning rate, dev WER/CER, …) against the step
    into a PNG (needs matplotlib: pip install 'speechseq[plot]')."""
    from speechseq.curves import plot_metrics

    refuse_to_replace(output, overwrite=overwrite)
    typer.echo(f"wrote {plot_metrics(metrics, output)}", err=True)
