"""Attention plots: the PNG writer and the image it draws."""

import struct
import zlib

import numpy as np
import torch

from speechseq.tts.plotting import alignment_image, write_png


def _diagonal(steps: int, chars: int) -> torch.Tensor:
    """(S, L) one-hot attention moving evenly from the first character to the last."""
    a = torch.zeros(steps, chars)
    a[torch.arange(steps), (torch.arange(steps) * chars) // steps] = 1.0
    return a


def test_png_writer_round_trip(tmp_path):
    alignment = _diagonal(30, 10)
    image = alignment_image(alignment)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    path = write_png(tmp_path / "a.png", image)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (height, width) == image.shape[:2]
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    rows = np.frombuffer(zlib.decompress(data[41 : 41 + idat_length]), np.uint8)
    rows = rows.reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()
    np.testing.assert_array_equal(rows[:, 1:].reshape(height, width, 3), image)
    # first character at the bottom-left, last at the top-right: bright corners there
    assert image[-1, 0].sum() > 400 and image[0, -1].sum() > 400 and image[0, 0].sum() < 300
