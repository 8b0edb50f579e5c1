"""A synthetic classification dataset: Gaussian clusters in a feature space.

It needs no files, is generated deterministically from a seed, and is hard enough that a model has
to learn (clusters overlap with the default noise), which makes it the core's demo and test data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


@dataclass
class BlobsConfig:
    num_samples: int = 512
    num_classes: int = 4
    feature_dim: int = 16
    noise: float = 1.0
    centers_seed: int = 0
    seed: int = 1


class GaussianBlobs(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``num_samples`` points drawn around ``num_classes`` random centers.

    The centers depend only on ``centers_seed`` (shared by the train and validation splits); the
    points on ``seed``.

    Batch (default collate):
        features: (B, F) float32; labels: (B,) int64.
    """

    def __init__(self, cfg: BlobsConfig) -> None:
        self.cfg = cfg
        centers_gen = torch.Generator().manual_seed(cfg.centers_seed)
        centers = torch.randn(cfg.num_classes, cfg.feature_dim, generator=centers_gen) * 1.5
        gen = torch.Generator().manual_seed(cfg.seed)
        self.labels = torch.randint(0, cfg.num_classes, (cfg.num_samples,), generator=gen)
        noise = torch.randn(cfg.num_samples, cfg.feature_dim, generator=gen) * cfg.noise
        self.features = centers[self.labels] + noise  # (N, F)

    def __len__(self) -> int:
        return self.cfg.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[index], self.labels[index]


def gaussian_blobs(
    num_samples: int = 512,
    num_classes: int = 4,
    feature_dim: int = 16,
    noise: float = 1.0,
    centers_seed: int = 0,
    seed: int = 1,
) -> GaussianBlobs:
    """The ``core/gaussian_blobs`` dataset builder (arguments as :class:`BlobsConfig`'s fields)."""
    return GaussianBlobs(
        BlobsConfig(
            num_samples=int(num_samples),
            num_classes=int(num_classes),
            feature_dim=int(feature_dim),
            noise=float(noise),
            centers_seed=int(centers_seed),
            seed=int(seed),
        )
    )
