"""``speechseq lm``: word n-gram language models for beam search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speechseq.cli.common import friendly, refuse_to_replace, sub_app

app = sub_app(help="Build word n-gram language models for beam search.", no_args_is_help=True)


@app.command("build")
@friendly
def lm_build(
    corpus: Annotated[Path, typer.Argument(help="Text, one sentence a line (normalised here).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The ARPA file to write.")],
    order: Annotated[int, typer.Option(help="n-gram order.")] = 3,
    min_count: Annotated[
        int, typer.Option(help="Prune n-grams of order >= 2 seen fewer times (smaller file).")
    ] = 1,
    field: Annotated[
        int | None, typer.Option(help="Use this tab-separated field of each line (0-based).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Build a word n-gram LM (modified Kneser-Ney, ARPA) for --decoder beam --lm."""
    from speechseq.asr.lm import build_arpa

    refuse_to_replace(output, overwrite=overwrite)
    summary = build_arpa(corpus, output, order=order, min_count=min_count, field=field)
    counts = ", ".join(f"{n}-grams {c}" for n, c in enumerate(summary.ngrams, start=1))
    typer.echo(
        f"wrote {output}: {summary.sentences} sentences, {summary.words} words; {counts}",
        err=True,
    )
