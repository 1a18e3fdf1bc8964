"""BiGRU-CTC recognizer: convolutional front end → bidirectional GRUs → linear → log-probs.

Example:
    >>> config = RecognizerConfig(vocab_size=29)
    >>> model = Recognizer(config)
    >>> log_probs, lengths = model(torch.randn(2, 300, 80), torch.tensor([300, 200]))
    >>> log_probs.shape, lengths.tolist()
    (torch.Size([2, 75, 29]), [75, 50])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["Recognizer", "RecognizerConfig"]

# subsampling → the two convolutions' time strides; a stride of at most the kernel's 3 frames
# leaves no input frame unseen
_TIME_STRIDES = {2: (2, 1), 4: (2, 2), 6: (2, 3)}


@dataclass(frozen=True)
class RecognizerConfig:
    """Shape of a :class:`Recognizer`; saved in every checkpoint.

    Args:
        kind: ``recognizer``, the key of :data:`speechseq.models.MODELS` (checkpoints from
            before configs had a kind lack it, and load as this).
        vocab_size: output symbols including the CTC blank (id 0).
        n_mels: input feature channels.
        subsampling: time reduction of the front end: 2, 4 or 6 (the first convolution's
            time stride is 2, the second's 1, 2 or 3). With 10 ms feature hops, 4 gives 40 ms
            output frames and 6 gives 60 ms, which leaves fewer steps for the GRUs; CTC needs
            at least one frame per output token (two for a repeated one), so 6 suits word
            pieces better than characters (and TTS duration extraction, which aligns
            characters, wants 4).
        conv_channels: channels of each of the two 3×3 convolutions.
        hidden_size: GRU units per direction.
        num_layers: stacked bidirectional GRU layers.
        dropout: dropout between GRU layers and before the output layer.
    """

    kind: str = "recognizer"
    vocab_size: int = 29
    n_mels: int = 80
    subsampling: int = 4
    conv_channels: int = 32
    hidden_size: int = 256
    num_layers: int = 3
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.kind != "recognizer":
            raise ValueError(f"kind must be 'recognizer', not {self.kind!r}")
        if self.subsampling not in _TIME_STRIDES:
            raise ValueError(f"subsampling must be 2, 4 or 6, not {self.subsampling}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RecognizerConfig:
        return cls(**d)


class _ConvFrontEnd(nn.Module):
    """Two 3×3 Conv2d layers over (time, mel); each halves the mel axis, together they divide
    time by ``subsampling``.

    The convolutions have no bias: batch norm right after each subtracts any per-channel
    constant again, so a bias would get a zero gradient in exact arithmetic, and AdamW would
    turn its rounding-level gradient into ±lr steps that differ between CPUs and thread counts.
    """

    def __init__(self, n_mels: int, channels: int, subsampling: int) -> None:
        super().__init__()
        time_strides = _TIME_STRIDES[subsampling]
        self.strides = time_strides
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=(time_strides[0], 2), padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, stride=(time_strides[1], 2), padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
        )
        mels = n_mels
        for _ in range(2):
            mels = (mels - 1) // 2 + 1
        self.output_size = channels * mels

    def _load_from_state_dict(
        self, state_dict: dict, prefix: str, local_metadata: dict, *args, **kwargs
    ) -> None:
        # Checkpoints from before the biases went (the shipped model among them) have them: a
        # bias b before batch norm is the same as a running mean lower by b, so fold it in.
        for conv, norm in ((0, 1), (3, 4)):
            key, bias_key = f"{prefix}conv.{norm}.running_mean", f"{prefix}conv.{conv}.bias"
            if bias_key in state_dict and key in state_dict:
                mean, bias = state_dict[key], state_dict.pop(bias_key)
                dtype = self.conv[norm].running_mean.dtype  # a float16 file: fold in float32
                folded = mean.to(dtype) - bias.to(dtype)
                # load_state_dict(assign=True) keeps the file's tensors, and so their dtype
                assigned = local_metadata.get("assign_to_params_buffers", False)
                state_dict[key] = folded.to(mean.dtype) if assigned else folded
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def fuse_for_inference(self) -> None:
        """Fold each batch norm into the convolution before it and keep the weights
        channels-last: the same function in eval mode (up to rounding), about 2× faster on a
        CPU. Inference only: the folded layers no longer learn as batch norm does."""
        conv0, norm0, gelu0, conv1, norm1, gelu1 = self.conv
        assert isinstance(conv0, nn.Conv2d) and isinstance(norm0, nn.BatchNorm2d)
        assert isinstance(conv1, nn.Conv2d) and isinstance(norm1, nn.BatchNorm2d)
        self.conv = nn.Sequential(
            fuse_conv_bn_eval(conv0, norm0), gelu0, fuse_conv_bn_eval(conv1, norm1), gelu1
        ).to(memory_format=torch.channels_last)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for s in self.strides:
            lengths = torch.div(lengths - 1, s, rounding_mode="floor") + 1
        return lengths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) → (B, T', channels * n_mels')."""
        x = x.unsqueeze(1)  # (B, 1, T, n_mels)
        if len(self.conv) == 4:  # fused for inference: channels-last (a copy; cheap for C = 1)
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.conv(x)  # (B, C, T', n_mels')
        b, c, t, f = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, t, c * f)  # (B, T', C * n_mels')


class Recognizer(nn.Module):
    """Log-mel features → per-frame log-probabilities over the tokenizer's symbols, for CTC.

    The loss lives on the training side (``speechseq.asr.train.compute_loss``) since CTC needs
    lengths.

    Args:
        config: the model's shape.
    """

    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = _ConvFrontEnd(config.n_mels, config.conv_channels, config.subsampling)
        self.rnn = nn.GRU(
            self.frontend.output_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, config.vocab_size)

    def fuse_for_inference(self) -> Recognizer:
        """Make this eval-mode model faster on a CPU, the same function up to rounding (the
        front end's batch norms folded into its convolutions); not for training after.

        Returns:
            ``self``.
        """
        if self.training:
            raise ValueError("fuse_for_inference() needs eval mode: call model.eval() first")
        if len(self.frontend.conv) == 6:
            self.frontend.fuse_for_inference()
        return self

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) input frames → (B,) output frames."""
        return self.frontend.output_lengths(lengths)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            features: (B, T, n_mels) padded features.
            lengths: (B,) valid frames.

        Returns:
            log_probs: (B, T', vocab_size) log-softmax outputs (padding frames are garbage).
            out_lengths: (B,) valid output frames.
        """
        x = self.frontend(features)  # (B, T', D)
        out_lengths = self.output_lengths(lengths).clamp(min=1, max=x.shape[1])
        packed = pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed, _ = self.rnn(packed)
        x, _ = pad_packed_sequence(packed, batch_first=True, total_length=x.shape[1])  # (B, T', 2H)
        logits = self.output(self.dropout(x))  # (B, T', V)
        return logits.log_softmax(dim=-1), out_lengths
