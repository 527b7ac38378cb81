"""The shapes world's rewards, published under the entry-point group "t2i_gcpo.rewards" like
any plug-in's: "shapes-clip", "shapes-aesthetic" (the shipped tiny CLIP and aesthetic head) and
"shapes-oracle" (the ground truth, also a reward_models.Judge)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reward_models import AestheticScore, CLIPScore, RewardModel, Verdict
from t2i_gcpo.data.geneval import objects_asked
from t2i_gcpo.toy.assets import shapes_aesthetic_path, shapes_clip_path
from t2i_gcpo.toy.oracle import flow_grpo_score, judge_batch, objects_by_class, wrong_version

ORACLE_MODES = ("strict", "share", "flow_grpo")
EXTRAS_RULES = ("allowed", "named", "none")


def shapes_clip(**kwargs) -> CLIPScore:
    """CLIPScore with the shapes world's CLIP (the default training reward)."""
    return CLIPScore("local-dir:" + str(shapes_clip_path()), **kwargs)


def shapes_aesthetic(**kwargs) -> AestheticScore:
    """AestheticScore with the shapes world's head over its CLIP's embeddings."""
    return AestheticScore(shapes_aesthetic_path(), "local-dir:" + str(shapes_clip_path()), **kwargs)


def within_extras(found: Sequence, metadata: dict, extras: str) -> bool:
    """Whether an image's detections keep to the `extras` rule (see ShapesOracle)."""
    if extras == "none":
        return len(found) <= objects_asked(metadata)
    asked: dict[str, int] = {}
    for req in metadata["include"]:
        asked[req["class"]] = asked.get(req["class"], 0) + int(req["count"])
    by_class = objects_by_class(found)
    return all(len(by_class.get(name, [])) <= count for name, count in asked.items())


class ShapesOracle(RewardModel):
    """images (N, 3, H, W) in [0, 1] + GenEval metadata -> oracle scores (N,).

    mode: "strict" (1.0 when the image satisfies its prompt by GenEval's rules, else 0.0),
    "share" (the share of the prompt's requirements met, excludes included) or "flow_grpo" (the
    partial score Flow-GRPO trains on: exact counts of every named class, graded; see
    toy.oracle.flow_grpo_score; `extras` must stay "allowed" with it). Prompts are not
    read; each sample's metadata must be a GenEval record of this world (see toy.scenes).
    `judge` gives the verdicts with the masks of the objects found for the prompt.

    extras: what an image may hold beyond what its prompt asks. "allowed": anything, as
    GenEval's rules allow (only counting's exclude limits the counted class); "named": no class
    the prompt names more often than it names it; "none": no more objects, named or not, than
    the prompt's counts add up to. "named" and "none" are one more requirement of the verdict
    and the share. Under GenEval's rules a policy learns to scatter objects, which only
    counting punishes; under either limit the default run gains nothing (docs/results.md,
    section 4).
    """

    name = "shapes-oracle"

    def __init__(self, mode: str = "strict", extras: str = "allowed") -> None:
        if mode not in ORACLE_MODES:
            raise ValueError(f"mode={mode!r}; expected one of {ORACLE_MODES}")
        if extras not in EXTRAS_RULES:
            raise ValueError(f"extras={extras!r}; expected one of {EXTRAS_RULES}")
        if mode == "flow_grpo" and extras != "allowed":
            raise ValueError(
                f"extras={extras!r} with mode 'flow_grpo': its exact counts already limit the "
                "named classes; use extras 'allowed'"
            )
        self.mode = mode
        self.extras = extras

    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> torch.Tensor:
        scores = []
        for result, meta in zip(judge_batch(images, metadata), metadata, strict=True):
            correct, share = result.correct, result.share
            if self.extras != "allowed":
                sparse = within_extras(result.found, meta, self.extras)
                total = len(meta["include"]) + len(meta.get("exclude", []))
                correct = correct and sparse
                share = (share * total + sparse) / (total + 1)
            if self.mode == "flow_grpo":
                scores.append(flow_grpo_score(result.found, meta))
            else:
                scores.append(float(correct) if self.mode == "strict" else share)
        return torch.tensor(scores, dtype=torch.float32, device=images.device)

    def judge(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> list[Verdict]:
        """One verdict per image: right or not by GenEval's rules, the masks of the objects
        found for the prompt's requirements, and why it is wrong; `details` holds how many
        objects it found in all (`found`), their classes (`classes`, None if unrecognised) and
        colours (`colors`), largest object first."""
        return [
            Verdict(
                r.correct,
                r.masks,
                r.reason,
                {
                    "found": len(r.found),
                    "classes": [d.shape for d in r.found],
                    "colors": [d.color for d in r.found],
                },
            )
            for r in judge_batch(images, metadata)
        ]

    def wrong_version(
        self, image: torch.Tensor, prompt: str, metadata: dict, seed: int
    ) -> torch.Tensor | None:
        """A right image with one of its prompt's objects redrawn wrongly in place (another
        class or colour): the blame test's input (see toy.oracle.wrong_version)."""
        return wrong_version(image, metadata, seed)
