"""The LAION "improved aesthetic predictor" head: an MLP over L2-normalised CLIP embeddings."""

from __future__ import annotations

import torch
from torch import nn


class AestheticMLP(nn.Module):
    """embeddings (N, D), L2-normalised -> scores (N,).

    Linear(D, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2), Linear(128, 64),
    Dropout(0.1), Linear(64, 16), Linear(16, 1), no activations: the public head's layout, so its
    state dict (keys layers.{0,2,4,6,7}.{weight,bias}) loads as it is. D = 768 for the public
    head (CLIP ViT-L/14); the shapes world's head uses its CLIP's width.
    """

    def __init__(self, input_size: int = 768) -> None:
        super().__init__()
        self.input_size = input_size
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings).squeeze(-1)
