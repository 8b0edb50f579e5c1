"""``kaldi/feature_input``: the preprocessor of a CTC model that trains on Kaldi features.

NeMo's ``KaldiFeatureDataLayer`` hands ``feats.scp`` matrices straight to the encoder; here a
model keeps its usual shape (preprocessor -> encoder -> head) and its preprocessor is this
module, which takes padded (B, T, F) feature matrices and gives the encoder (B, F, T)::

    model:
      preprocessor: {name: kaldi/feature_input, feat_dim: 80}
      train_ds: {dataset: kaldi/features, data_dir: data/train}
"""

from __future__ import annotations

import torch
from torch import nn

from convai_core.types import MEL, B, Lengths, NeuralType, SpectrogramType, T, typed

__all__ = ["FeatureInput"]


class FeatureInput(nn.Module):
    """Pass precomputed features (Kaldi fbank/MFCC/convai log-mel) to an encoder.

    Args:
        feat_dim: the feature dimension F (columns of the ``feats.scp`` matrices).
        frame_shift: seconds between frames (Kaldi's default 10 ms), for timestamps.

    Shapes:
        features: (B, T, F), length: (B,) frames -> (B, F, T), (B,).
    """

    def __init__(self, feat_dim: int, frame_shift: float = 0.01) -> None:
        super().__init__()
        if feat_dim <= 0:
            raise ValueError(f"feat_dim must be positive, got {feat_dim}")
        self.feat_dim = int(feat_dim)
        self.frame_shift_s = float(frame_shift)

    @property
    def input_ports(self) -> dict[str, NeuralType]:
        """``features`` (B, T, MEL=feat_dim) and ``length`` (B,) valid frames."""
        return {
            "features": NeuralType((B, T, MEL.sized(self.feat_dim)), SpectrogramType()),
            "length": NeuralType((B,), Lengths()),
        }

    @property
    def output_ports(self) -> dict[str, NeuralType]:
        """``processed_signal`` (B, MEL=feat_dim, T) and ``processed_length`` (B,)."""
        return {
            "processed_signal": NeuralType((B, MEL.sized(self.feat_dim), T), SpectrogramType()),
            "processed_length": NeuralType((B,), Lengths()),
        }

    @typed
    def forward(
        self, features: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transpose padded features for the encoder; padded frames are set to 0."""
        if features.dim() != 3 or features.shape[-1] != self.feat_dim:
            raise ValueError(
                f"kaldi/feature_input expects (B, T, {self.feat_dim}) features, got "
                f"{tuple(features.shape)}; set model.preprocessor.feat_dim to the feature "
                "dimension of feats.scp"
            )
        mask = torch.arange(features.shape[1], device=features.device)[None] < length[:, None]
        out = features.float().masked_fill(~mask[..., None], 0.0)  # (B, T, F)
        return out.transpose(1, 2).contiguous(), length  # (B, T, F) -> (B, F, T)
