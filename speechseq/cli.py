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
    help="speechseq: train, evaluate and run recurrent speech recognizers and synthesizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build and prepare data manifests.", no_args_is_help=True)
train_app = typer.Typer(help="Train models from a YAML experiment file.", no_args_is_help=True)
app.add_typer(data_app, name="data")
lm_app = typer.Typer(
    help="Build word n-gram language models for beam search.", no_args_is_help=True
)
app.add_typer(train_app, name="train")
app.add_typer(lm_app, name="lm")


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
    srt = "srt"
    vtt = "vtt"
    tsv = "tsv"
    all = "all"


def _transcribe_progress(total: int):
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


def _flat_malloc() -> None:
    """Have glibc serve blocks over 128 KiB with mmap, so each batch's freed tensors go back to
    the system. Its default adaptive threshold lets the heap fragment: transcribing a 2-hour
    file, peak RSS crept from 690 MB to 980 MB with the file's length; with this it stays flat."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class DecoderKind(str, Enum):
    auto = "auto"
    greedy = "greedy"
    beam = "beam"


DecoderOption = Annotated[
    DecoderKind,
    typer.Option(
        "--decoder",
        help="auto: for the shipped model, beam search with the shipped word LM (more "
        "accurate); for other models greedy, or beam if --lm is given. greedy: fastest. "
        "beam: beam search (with the shipped LM on the shipped model unless --lm).",
    ),
]
BeamSizeOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Beam search: hypotheses kept per frame (default: the shipped model's tuned value, "
        "else 50).",
    ),
]
LMOption = Annotated[
    Path | None,
    typer.Option(help="Beam search: word n-gram LM, ARPA or KenLM binary (speechseq lm build)."),
]
LMWeightOption = Annotated[
    float | None,
    typer.Option(
        help="Beam search: weight of the LM's log10 scores (default: the shipped model's "
        "tuned value, else 1.0)."
    ),
]
WordBonusOption = Annotated[
    float | None,
    typer.Option(
        help="Beam search: score added per word (default: the shipped model's tuned value, "
        "else 0.0)."
    ),
]
BeamTokensOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Beam search: tokens tried per frame, the most probable first; fewer is faster "
        "(default: the shipped model's tuned value, else 32; the vocabulary's size: all).",
    ),
]


def _decoding(
    decoder: DecoderKind,
    beam_size: int | None,
    lm: Path | None,
    lm_weight: float | None,
    word_bonus: float | None,
    beam_tokens: int | None,
):
    from speechseq.beam import DecoderConfig

    return DecoderConfig(decoder.value, beam_size, lm, lm_weight, word_bonus, beam_tokens)


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
            help="Write transcript files here (folders mirrored) instead of printing "
            "PATH<TAB>TEXT lines; a re-run skips inputs whose files all exist.",
        ),
    ] = None,
    fmt: Annotated[
        list[OutputFormat],
        typer.Option("--format", "-f", help="Transcript format; repeat for several, or all."),
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
        int, typer.Option(help="Processes reading and featurizing audio (0: the main one).")
    ] = 1,
    batch_seconds: Annotated[
        float, typer.Option(help="Padded audio seconds per batch (bounds memory).")
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
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="Do only part K of N (K from 0) of the inputs, e.g. for a SLURM array task; "
            "under torchrun each rank takes its part of that."
        ),
    ] = None,
) -> None:
    """Transcribe audio files of any length, with word times; exits 1 if any input failed
    (each failure is named on stderr). Under torchrun the ranks split the inputs."""
    from datetime import timedelta

    import torch

    from speechseq import distributed
    from speechseq.inference import Transcriber
    from speechseq.jobs import JobSummary, parse_shard, plan_job, run_job, shard_report
    from speechseq.writers import SubtitleOptions

    _set_threads(threads)
    _flat_malloc()
    part, parts = parse_shard(shard) if shard else (0, 1)
    rank, world = distributed.rank(), distributed.world_size()  # torchrun's; alone: 0 of 1
    if world > 1:  # rank r of w takes part r of w of the --shard part
        part, parts = part * world + rank, parts * world
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # gloo only for the final tally; ranks finish far apart, so wait for as long as it takes
        device = str(distributed.init(torch.device(device), timedelta(days=7), backend="gloo"))
    transcriber = Transcriber.from_pretrained(
        model,
        device=device,
        max_batch_seconds=batch_seconds,
        max_segment_seconds=segment_seconds,
        decoding=_decoding(decoder, beam_size, lm, lm_weight, word_bonus, beam_tokens),
    )
    plan = plan_job(inputs, output_dir, [f.value for f in fmt], overwrite, (part, parts))
    if report is None and output_dir is not None:
        report = output_dir / "report.jsonl"
    if report is not None:
        report = shard_report(report, part, parts)  # one report per part
    options = SubtitleOptions(
        max_line_width=max_line_width or None,
        max_line_count=max_line_count or None,
        max_words_per_line=max_words_per_line or None,
    )
    todo = {str(job.input) for job in plan.todo}
    bar, progress = _transcribe_progress(len(todo) if distributed.is_main() else 0)  # 0: no bar

    def on_result(result) -> None:
        if not result.ok:
            bar.write(f"error: {result.error}", file=sys.stderr)
        elif output_dir is None:
            bar.write(f"{result.path}\t{result.text}", file=sys.stdout)
        if result.path in todo:  # not an input that named nothing
            progress(result)

    summary = run_job(transcriber, plan, report, options, workers, on_result)
    bar.close()
    line = str(summary)
    if summary.skipped:
        line += " (transcripts exist; --overwrite to redo)"
    typer.echo(f"shard {part}/{parts}: {line}" if parts > 1 else line, err=True)
    if world > 1:
        # Every rank waits here for the others: torchrun stops all ranks when one exits non-zero.
        counts = distributed.sum_over_ranks([summary.succeeded, summary.failed, summary.skipped])
        summary = JobSummary(*(int(c) for c in counts))
        distributed.cleanup()
        if distributed.is_main():
            typer.echo(f"all ranks: {summary}", err=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
@_friendly
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
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
) -> None:
    """Print WER, CER and real-time factor of MODEL on MANIFEST (--decoder auto: greedy, or
    for the shipped model its tuned beam search and LM; --decoder greedy|beam to choose)."""
    from tqdm import tqdm

    from speechseq.data import read_manifest
    from speechseq.inference import Transcriber

    if output is not None and output.exists() and not overwrite:
        raise SpeechseqError(f"{output}: exists; pass --overwrite to replace it")
    _set_threads(threads)
    utterances = read_manifest(manifest)
    if not utterances:
        raise SpeechseqError(f"{manifest}: holds no utterances")
    transcriber = Transcriber.from_pretrained(
        model,
        device=device,
        max_batch_seconds=batch_seconds,
        decoding=_decoding(decoder, beam_size, lm, lm_weight, word_bonus, beam_tokens),
    )
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
    from speechseq import distributed
    from speechseq.config import load_asr_config, parse_overrides
    from speechseq.training import train_asr

    cfg = load_asr_config(config, parse_overrides(list(ctx.args)))
    best = train_asr(cfg, resume=resume, progress=progress)  # under torchrun: on every rank
    if distributed.is_main():
        typer.echo(f"best checkpoint: {best}", err=True)


@lm_app.command("build")
@_friendly
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
    from speechseq.lm import build_arpa

    if output.exists() and not overwrite:
        raise SpeechseqError(f"{output}: exists; pass --overwrite to replace it")
    summary = build_arpa(corpus, output, order=order, min_count=min_count, field=field)
    counts = ", ".join(f"{n}-grams {c}" for n, c in enumerate(summary.ngrams, start=1))
    typer.echo(
        f"wrote {output}: {summary.sentences} sentences, {summary.words} words; {counts}",
        err=True,
    )


def _speakable_lines(text_file: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line; an unspeakable line is an error."""
    from speechseq.synthesis import split_sentences

    if not text_file.is_file():
        raise SpeechseqError(f"{text_file}: no such text file")
    try:
        lines = text_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SpeechseqError(f"{text_file}: not UTF-8 text") from None
    numbered = [(i, line) for i, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise SpeechseqError(f"{text_file}: holds no text")
    for number, line in numbered:
        if not split_sentences(line):
            raise SpeechseqError(f"{text_file}:{number}: nothing to say (no letters or digits)")
    return numbered


def _save_new(path: Path, waveform, sample_rate: int) -> None:
    """Write audio under a temporary name, then rename: a killed run leaves no partial file."""
    from speechseq.audio import save_audio

    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    save_audio(tmp, waveform, sample_rate)
    os.replace(tmp, path)


@app.command()
@_friendly
def synthesize(
    text: Annotated[str | None, typer.Argument(help="The text to speak (quote it).")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Audio file to write, for TEXT.")
    ] = None,
    text_file: Annotated[
        Path | None,
        typer.Option(help="Speak each non-blank line of this file into its own file instead."),
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
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
) -> None:
    """Speak TEXT into a file (-o out.wav), or each line of --text-file into --output-dir.
    Long text is split into sentences, joined with short pauses."""
    from speechseq.synthesis import Speaker, split_sentences

    if (text is None) == (text_file is None):
        raise SpeechseqError(
            "give either TEXT (with -o OUT.wav) or --text-file (with --output-dir)"
        )
    if text is not None:
        if output is None or output_dir is not None:
            raise SpeechseqError("TEXT is written to one file: give -o OUT.wav")
        if not split_sentences(text):
            raise SpeechseqError("nothing to say: the text has no letters or digits")
        if output.exists() and not overwrite:
            raise SpeechseqError(f"{output}: exists; pass --overwrite to replace it")
        jobs = [(text, output)]
    else:
        if output_dir is None or output is not None:
            raise SpeechseqError("--text-file writes one file per line: give --output-dir")
        lines = _speakable_lines(text_file)
        width = max(4, len(str(lines[-1][0])))
        jobs = [(line, output_dir / f"{number:0{width}d}.wav") for number, line in lines]
    todo = [(t, path) for t, path in jobs if overwrite or not path.exists()]
    _set_threads(threads)
    speaker = Speaker.from_pretrained(model, device=device, seed=seed) if todo else None
    for line, path in todo:
        result = speaker.speak(line)
        _save_new(path, result.waveform, result.sample_rate)
        for i, ended in enumerate(result.stopped):
            if not ended:
                typer.echo(
                    f"warning: {path}: sentence {i + 1} reached the length limit without "
                    "stopping; its end may be garbled",
                    err=True,
                )
        rtf = result.seconds / max(1e-9, result.duration)
        typer.echo(f"wrote {path}: {result.duration:.2f} s of audio (RTF {rtf:.3f})", err=True)
    if len(todo) < len(jobs):
        typer.echo(
            f"{len(todo)} written, {len(jobs) - len(todo)} skipped (files exist; "
            "--overwrite to redo)",
            err=True,
        )


@train_app.command(
    "tts", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@_friendly
def train_tts_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="YAML experiment file.")],
    resume: Annotated[
        bool, typer.Option(help="Continue the run in train.out_dir from its last.pt.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a Tacotron-style synthesizer. Extra arguments override the YAML:
    section.key=value or --section.key value (e.g. train.epochs=5 --model.reduction_factor 3)."""
    from speechseq.config import load_tts_config, parse_overrides
    from speechseq.training_tts import train_tts

    cfg = load_tts_config(config, parse_overrides(list(ctx.args)))
    with _warnings_as_lines():
        best = train_tts(cfg, resume=resume, progress=progress)
    typer.echo(f"best checkpoint: {best}", err=True)


def main() -> None:
    """The ``speechseq`` command (and ``python -m speechseq``, which torchrun starts per rank)."""
    from speechseq import distributed

    if not distributed.launched():
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


if __name__ == "__main__":
    main()
