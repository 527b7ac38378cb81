"""The shapes world's rewards, published under the entry-point group "t2i_gcpo.rewards" like
any plug-in's: "shapes-clip", "shapes-aesthetic" (the shipped tiny CLIP and aesthetic head) and
"shapes-oracle" (the ground truth, also a reward_models.Judge)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reward_models import AestheticScore, CLIPScore, RewardModel, Verdict
from t2i_gcpo.toy.assets import shapes_aesthetic_path, shapes_clip_path
from t2i_gcpo.toy.oracle import evaluate_batch

ORACLE_MODES = ("strict", "share")


def shapes_clip(**kwargs) -> CLIPScore:
    """CLIPScore with the shapes world's CLIP (the default training reward)."""
    return CLIPScore("local-dir:" + str(shapes_clip_path()), **kwargs)


def shapes_aesthetic(**kwargs) -> AestheticScore:
    """AestheticScore with the shapes world's head over its CLIP's embeddings."""
    return AestheticScore(shapes_aesthetic_path(), "local-dir:" + str(shapes_clip_path()), **kwargs)


class ShapesOracle(RewardModel):
    """images (N, 3, H, W) in [0, 1] + shapes-world metadata -> oracle scores (N,).

    mode: "strict" (1.0 when every named object is drawn right, else 0.0) or "share" (the
    fraction of named objects drawn right). Needs each sample's metadata to list its objects, as
    the shapes world's prompt sets do; prompts are not read. `judge` gives the verdicts with
    the found objects' masks.
    """

    name = "shapes-oracle"

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

    def judge(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> list[Verdict]:
        """One verdict per image: strictly right or not, and the masks of the objects found."""
        verdicts = []
        for result in evaluate_batch(images, metadata):
            wrong = [i for i, check in enumerate(result.objects) if not check.correct]
            reason = "" if not wrong else f"objects {wrong} not drawn as named"
            verdicts.append(Verdict(bool(result.strict), result.masks, reason))
        return verdicts
