"""Training curves from ``metrics.jsonl``, as a PNG, for people without TensorBoard
(``speechseq plot``; matplotlib is the ``[plot]`` extra).

Each numeric field of the log gets a panel against the step; fields that share a last word
(``loss`` and ``dev_loss``, ``dev_wer`` and ``synth_wer``) share a panel, so training and dev
curves sit together. The two clocks (``elapsed``, ``compute``) are left out.

Example:
    >>> plot_metrics(Path("exp/asr/metrics.jsonl"), Path("curves.png"))
    PosixPath('curves.png')
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from speechseq.errors import SpeechseqError
from speechseq.files import atomic_path

__all__ = ["metric_series", "plot_metrics"]

_NOT_PLOTTED = {"step", "epoch", "elapsed", "compute"}


def metric_series(path: Path) -> dict[str, list[tuple[int, float]]]:
    """field → [(step, value), …] for every numeric field of a metrics log, in step order.

    Raises:
        SpeechseqError: the file is missing, not JSON lines, or has no numeric field.
    """
    if not path.is_file():
        raise SpeechseqError(f"{path}: no such metrics file")
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                step = int(row["step"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise SpeechseqError(f"{path}:{lineno}: not a metrics row") from None
            for key, value in row.items():
                if key in _NOT_PLOTTED or isinstance(value, bool):
                    continue
                if isinstance(value, (int, float)) and math.isfinite(value):
                    series[key].append((step, float(value)))
    if not series:
        raise SpeechseqError(f"{path}: no numeric metrics to plot")
    return {key: sorted(points) for key, points in series.items()}


def plot_metrics(path: Path, out: Path) -> Path:
    """Draw ``path``'s curves into the PNG ``out`` (written whole or not at all).

    Raises:
        SpeechseqError: a bad metrics file, or matplotlib is not installed.
    """
    series = metric_series(path)
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; no screen needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpeechseqError("plotting needs matplotlib: pip install 'speechseq[plot]'") from None
    panels: dict[str, list[str]] = defaultdict(list)
    for key in series:
        panels[key.rsplit("_", 1)[-1]].append(key)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows), squeeze=False)
    for ax, (name, keys) in zip(axes.flat, panels.items(), strict=False):
        for key in keys:
            steps, values = zip(*series[key], strict=True)
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=key)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        if name in ("loss", "lr") and min(v for k in keys for _, v in series[k]) > 0:
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    figure.suptitle(str(path))
    figure.tight_layout()
    with atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    plt.close(figure)
    return out
