"""Start-up: wall clock of whole `speechseq` commands on one short file, median of N runs.

    python benchmarks/startup.py                      # data/samples/festival-ked.wav (2.0 s)
    python benchmarks/startup.py --runs 9 --audio my_3s.wav --baseline-code /tmp/before

Each row runs one command N times, one after another, and reports the median, min and max wall
seconds from launch to exit: ``speechseq --help``, ``speechseq transcribe FILE`` with the default
decoder (beam + LM for the shipped model) and with ``--decoder greedy``, each as it runs by
default (a short file: ONNX Runtime, no torch) and with ``--engine torch``, and, as floors,
``python -c "import torch"`` and ``python -c "import speechseq.cli"``. ``--baseline-code DIR``
adds the two transcribe rows for another speechseq source tree (on PYTHONPATH, with its own
shipped model), for a ratio in the same run. Timings only mean something on an otherwise idle
machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "festival-ked.wav"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--audio", type=Path, default=SAMPLE, help="One short audio file.")
    parser.add_argument("--runs", type=int, default=5, help="Runs per row (median reported).")
    parser.add_argument("--baseline-code", type=Path, default=None, help="Another source tree.")
    return parser


def timed(command: list[str], runs: int, python_path: str | None = None) -> list[float]:
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        # from the tree's own folder: ``python -m`` puts the working folder first on sys.path
        done = subprocess.run(command, capture_output=True, env=env, cwd=python_path)
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr[-300:]}")
    return seconds


def main() -> None:
    args = get_parser().parse_args()
    cli = [sys.executable, "-m", "speechseq"]
    rows: list[tuple[str, list[str], str | None]] = [
        ("python -c 'import torch' (the floor)", [sys.executable, "-c", "import torch"], None),
        ("python -c 'import speechseq.cli'", [sys.executable, "-c", "import speechseq.cli"], None),
        ("speechseq --help", [*cli, "--help"], None),
        (
            "speechseq transcribe FILE (default decoder)",
            [*cli, "transcribe", str(args.audio)],
            None,
        ),
        (
            "speechseq transcribe FILE --decoder greedy",
            [*cli, "transcribe", str(args.audio), "--decoder", "greedy"],
            None,
        ),
        (
            "speechseq transcribe FILE --engine torch",
            [*cli, "transcribe", str(args.audio), "--engine", "torch"],
            None,
        ),
        (
            "speechseq transcribe FILE --engine torch --decoder greedy",
            [*cli, "transcribe", str(args.audio), "--engine", "torch", "--decoder", "greedy"],
            None,
        ),
    ]
    if args.baseline_code:
        base = str(args.baseline_code.resolve())
        rows.append(
            (f"baseline {base}: transcribe FILE", [*cli, "transcribe", str(args.audio)], base)
        )
        rows.append(
            (
                f"baseline {base}: transcribe FILE --decoder greedy",
                [*cli, "transcribe", str(args.audio), "--decoder", "greedy"],
                base,
            )
        )
    print(f"audio: {args.audio}; {args.runs} runs a row; load average {os.getloadavg()}")
    print("\n| command | median s | min s | max s |\n|---|---:|---:|---:|")
    for name, command, python_path in rows:
        seconds = timed(command, args.runs, python_path)
        print(
            f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | "
            f"{max(seconds):.2f} |",
            flush=True,
        )
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
