"""OracleScore: the shapes world's ground truth as a reward (strict accuracy or object share)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reward_models.base import RewardModel
from reward_models.registry import register_reward
from t2i_gcpo.toy.oracle import evaluate_batch

ORACLE_MODES = ("strict", "share")


@register_reward("oracle")
class OracleScore(RewardModel):
    """images (N, 3, H, W) in [0, 1] + shapes-world metadata -> oracle scores (N,).

    mode: "strict" (1.0 when every named object is drawn right, else 0.0) or "share" (the
    fraction of named objects drawn right). Needs each sample's metadata to list its objects, as
    the shapes world's prompt sets do; prompts are not read.
    """

    name = "oracle"

    def __init__(self, mode: str = "strict") -> None:
        if mode not in ORACLE_MODES:
            raise ValueError(f"mode={mode!r}; expected one of {ORACLE_MODES}")
        self.mode = mode

    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> torch.Tensor:
        results = evaluate_batch(images, metadata)
        scores = [result.strict if self.mode == "strict" else result.share for result in results]
        return torch.tensor(scores, dtype=torch.float32, device=images.device)
