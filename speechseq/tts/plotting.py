"""Attention plots as PNG files, written with numpy and zlib alone (matplotlib is not a
dependency: one heat map a validation does not justify it).

Example:
    >>> write_png("alignment.png", alignment_image(alignments[0, :steps, :chars]))
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

__all__ = ["alignment_image", "write_png"]

# A few stops of matplotlib's viridis, interpolated linearly: dark blue (0) → yellow (1).
_VIRIDIS = np.array(
    [
        [68, 1, 84],
        [72, 40, 120],
        [62, 73, 137],
        [49, 104, 142],
        [38, 130, 142],
        [31, 158, 137],
        [53, 183, 121],
        [110, 206, 88],
        [181, 222, 43],
        [253, 231, 37],
    ],
    dtype=np.float64,
)


def alignment_image(
    alignment: torch.Tensor | np.ndarray, width: int = 800, height: int = 400
) -> np.ndarray:
    """Colour a (steps, chars) attention matrix: decoder steps left to right, characters bottom
    to top, so a good alignment is a line rising from the bottom-left corner.

    Args:
        alignment: (S, L) weights in [0, 1].
        width, height: about how big to draw it: each cell becomes a block of whole pixels
            (1 to 16 each way), so small matrices are enlarged and big ones kept sharp.

    Returns:
        (H, W, 3) uint8 image.
    """
    a = np.asarray(alignment.detach().cpu() if isinstance(alignment, torch.Tensor) else alignment)
    a = np.clip(a.astype(np.float64), 0.0, 1.0).T[::-1]  # (L, S), first character at the bottom
    rows, cols = a.shape
    a = np.repeat(a, max(1, min(16, height // max(1, rows))), axis=0)
    a = np.repeat(a, max(1, min(16, width // max(1, cols))), axis=1)
    position = a * (len(_VIRIDIS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_VIRIDIS) - 2)
    frac = (position - low)[..., None]
    rgb = _VIRIDIS[low] * (1 - frac) + _VIRIDIS[low + 1] * frac  # (H, W, 3)
    return rgb.round().astype(np.uint8)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) or (H, W) uint8 image as an 8-bit PNG."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    height, width, _ = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
