"""The ``speechseq`` command line: commands parse arguments and call the library, nothing more.

One file per area, each a typer sub-app: :mod:`~speechseq.cli.asr` (``transcribe``,
``evaluate``, ``train asr``), :mod:`~speechseq.cli.tts` (``synthesize``, ``train tts``),
:mod:`~speechseq.cli.data` (``data …``) and :mod:`~speechseq.cli.lm` (``lm …``). Run
``speechseq --help`` (or ``python -m speechseq --help``) for the list.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from speechseq.cli import asr, data, export, info, lm, plot, tts
from speechseq.cli.common import set_logging, sub_app

__all__ = ["app", "main"]

app = sub_app(no_args_is_help=True, pretty_exceptions_enable=False)
train_app = sub_app(help="Train models from a YAML experiment file.", no_args_is_help=True)
app.add_typer(asr.app)
app.add_typer(tts.app)
app.add_typer(data.app, name="data")
train_app.add_typer(asr.train_app)
train_app.add_typer(tts.train_app)
app.add_typer(train_app, name="train")
app.add_typer(lm.app, name="lm")
app.add_typer(info.app)
app.add_typer(export.app)
app.add_typer(plot.app)
app.add_typer(tts.tts_app, name="tts")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"speechseq {version('speechseq')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version, exit."
        ),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Say more on stderr: -v what is loaded and chosen, -vv debug detail. Goes "
            "before the command: speechseq -v transcribe ….",
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Say only errors on stderr (no warnings).")
    ] = False,
) -> None:
    """speechseq: train, evaluate and run recurrent speech recognizers and synthesizers."""
    set_logging(verbose, quiet)


def main() -> None:
    """The ``speechseq`` command (and ``python -m speechseq``, which torchrun starts per rank)."""
    # torchrun sets WORLD_SIZE (as speechseq.distributed.launched reads it, without torch here)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        app()
        return
    # Under torchrun, leave without the interpreter's teardown. Once the work is done and the
    # process group destroyed, torch frees gloo's process group during teardown, and now and
    # then that aborts the rank ("terminate called without an active exception", SIGABRT; seen
    # here twice in the 2-rank tests, after every checkpoint was written). torchrun then fails
    # the whole job. Every file we write is closed by now; only stdout/stderr need flushing.
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
