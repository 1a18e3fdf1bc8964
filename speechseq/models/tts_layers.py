"""What both text-to-speech models share: their config's common fields, the character encoder
and the postnet.

:class:`speechseq.models.tts.Synthesizer` (attention) and
:class:`speechseq.models.duration_tts.DurationSynthesizer` (durations) read characters and
refine their mels the same way, so those two pieces live here, sized by plain arguments rather
than by either model's config; both configs extend :class:`TtsConfigBase`.

Example:
    >>> encoder = TextEncoder(vocab_size=29, embedding_dim=128, channels=256)
    >>> memory = encoder(torch.randint(1, 29, (2, 30)), torch.tensor([30, 22]))  # (2, 30, 256)
    >>> residual = Postnet(n_mels=80, channels=192)(torch.randn(2, 120, 80))  # (2, 120, 80)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["Postnet", "TextEncoder", "TtsConfigBase", "check_tts_shape"]


def check_tts_shape(reduction_factor: int, encoder_channels: int, postnet_layers: int) -> None:
    """Raise ValueError for sizes neither text-to-speech model can be built with."""
    if reduction_factor < 1:
        raise ValueError(f"reduction_factor must be at least 1, not {reduction_factor}")
    if encoder_channels % 2:
        raise ValueError("encoder_channels must be even (it is split over two directions)")
    if postnet_layers < 2:
        raise ValueError("postnet_layers must be at least 2")


@dataclass(frozen=True)
class TtsConfigBase:
    """The fields both text-to-speech configs have; each subclass sets its own ``kind``
    (``attention`` or ``duration``: the key of :data:`speechseq.models.MODELS`), its
    ``reduction_factor`` and ``dropout`` defaults and adds its own fields.

    Args:
        kind: which model the config builds; saved in every checkpoint.
        vocab_size: input symbols, id 0 being padding.
        n_mels: mel channels predicted per frame.
        reduction_factor: frames emitted per decoder step (r).
        embedding_dim: character embedding size.
        encoder_channels: channels of the encoder convolutions (and of the BiLSTM output).
        encoder_conv_layers, encoder_kernel_size: the encoder convolutions.
        postnet_channels, postnet_layers, postnet_kernel_size: the residual postnet.
        dropout: dropout after encoder and postnet convolutions.
    """

    kind: str = ""
    vocab_size: int = 29
    n_mels: int = 80
    reduction_factor: int = 1
    embedding_dim: int = 128
    encoder_channels: int = 256
    encoder_conv_layers: int = 3
    encoder_kernel_size: int = 5
    postnet_channels: int = 192
    postnet_layers: int = 5
    postnet_kernel_size: int = 5
    dropout: float = 0.5

    def __post_init__(self) -> None:
        own = next(f.default for f in fields(self) if f.name == "kind")
        if self.kind != own:
            raise ValueError(f"kind must be {own!r}, not {self.kind!r}")
        check_tts_shape(self.reduction_factor, self.encoder_channels, self.postnet_layers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Rebuild a saved config; checkpoints from before configs had a ``kind`` lack it."""
        return cls(**d)


def _conv_bn(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=(kernel - 1) // 2, bias=False), nn.BatchNorm1d(c_out)
    )


class TextEncoder(nn.Module):
    """Characters → (B, L, channels) memory: embedding → convolutions → BiLSTM.

    Args:
        vocab_size: input symbols, id 0 being padding.
        embedding_dim: character embedding size.
        channels: channels of the convolutions and of the BiLSTM output (even).
        conv_layers, kernel_size: the convolutions.
        dropout: dropout after each convolution.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        channels: int,
        conv_layers: int = 3,
        kernel_size: int = 5,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        dims = [embedding_dim] + [channels] * conv_layers
        self.convs = nn.ModuleList(
            _conv_bn(dims[i], dims[i + 1], kernel_size) for i in range(conv_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(channels, channels // 2, batch_first=True, bidirectional=True)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L) ids, (B,) lengths → (B, L, channels); padding positions are zero."""
        x = self.embedding(tokens).transpose(1, 2)  # (B, E, L)
        # Zero the padding after each layer, so an utterance encodes the same in any batch.
        keep = (
            torch.arange(tokens.shape[1], device=tokens.device) < lengths.to(tokens.device)[:, None]
        )
        for conv in self.convs:
            x = self.dropout(F.relu(conv(x))) * keep[:, None, :]  # (B, C, L)
        packed = pack_padded_sequence(
            x.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        return out  # (B, L, C)


class Postnet(nn.Module):
    """Convolutions over the whole predicted mel that add a residual correction.

    Args:
        n_mels: mel channels in and out.
        channels: channels of the inner convolutions.
        layers: convolutions (at least 2); tanh after all but the last.
        kernel_size: their width in frames.
        dropout: dropout after each convolution.
    """

    def __init__(
        self,
        n_mels: int,
        channels: int,
        layers: int = 5,
        kernel_size: int = 5,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        dims = [n_mels] + [channels] * (layers - 1) + [n_mels]
        self.convs = nn.ModuleList(
            _conv_bn(dims[i], dims[i + 1], kernel_size) for i in range(layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) → (B, T, n_mels) residual."""
        x = mel.transpose(1, 2)  # (B, n_mels, T)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = self.dropout(torch.tanh(x) if i < len(self.convs) - 1 else x)
        return x.transpose(1, 2)
