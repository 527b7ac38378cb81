"""Where a policy's GCPO credit goes on its held-out samples, split by the kind of token.

In raster order an object is decided on its first row of patches; the rows below copy its
colour and outline from the tokens above, so they depend on the prompt hardly at all. This
script measures that on the objects the shapes oracle finds in each sample: the AUROC of the
credit (null negative, the gcpo preset) for

    lead   the first row of patches of each found object,
    rest   the object's other patches,
    all    every object patch (what `t2i-gcpo eval` reports as object_auroc),

each against the background patches (0.5 = chance), and the mean k3 divergence per kind.

    python benchmarks/credit_where.py [--policy shapes] [--samples 2]
"""

from __future__ import annotations

import argparse

import torch

from t2i_gcpo.algos import GCPO, credit_preset
from t2i_gcpo.algos.metrics import patch_coverage, token_auroc
from t2i_gcpo.data.prompts import resolve_prompts
from t2i_gcpo.evaluation import judge_images, sampled_batches, view_logprobs
from t2i_gcpo.policies import load_policy
from t2i_gcpo.toy.rewards import ShapesOracle


def token_kinds(masks: torch.Tensor, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Found object masks (K, H, W) -> (T,) bool per kind: lead, rest, all, background."""
    lead = torch.zeros(grid, dtype=torch.bool)
    objects = torch.zeros(grid, dtype=torch.bool)
    for mask in masks:
        covered = patch_coverage(mask, grid) > 0
        objects |= covered
        first_row = covered.any(dim=1).nonzero()[0, 0]
        lead[first_row] |= covered[first_row]
    lead, objects = lead.flatten(), objects.flatten()
    return {"lead": lead, "rest": objects & ~lead, "all": objects, "background": ~objects}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="shapes", help="policy name or folder")
    parser.add_argument("--prompts", default="shapes:eval")
    parser.add_argument("--samples", type=int, default=2, help="samples per prompt")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    policy = load_policy(args.policy, device="cpu")
    records, judge, preset = resolve_prompts(args.prompts), ShapesOracle(), credit_preset(GCPO)
    grid = tuple(policy.grid)
    aurocs: dict[str, list[torch.Tensor]] = {"lead": [], "rest": [], "all": []}
    divergence: dict[str, list[torch.Tensor]] = {"lead": [], "rest": [], "background": []}
    batches = sampled_batches(
        policy, records, args.samples, policy.default_cfg_scale, seed=args.seed
    )
    for _, rollout, images, metadata in batches:
        prompts = rollout.sample_prompts
        verdicts = judge_images(judge, images, prompts, metadata)
        logp_neg, _ = view_logprobs(policy, prompts, rollout.tokens, None, rollout.logp_neg)
        div, credit = preset.token_credit(rollout.logp_pos.float(), logp_neg)
        for i, verdict in enumerate(verdicts):
            if len(verdict.masks) == 0:
                continue
            kinds = token_kinds(verdict.masks, grid)
            row, background = credit[i : i + 1].cpu(), kinds["background"]
            for kind in aurocs:
                valid = (kinds[kind] | background)[None]
                aurocs[kind].append(token_auroc(row, kinds[kind][None], valid)[0])
            for kind in divergence:
                if kinds[kind].any():
                    divergence[kind].append(div[i].cpu()[kinds[kind]].mean())

    def mean(values: list[torch.Tensor]) -> float:
        return torch.stack(values).nanmean().item()

    print(f"policy {args.policy}: {len(aurocs['all'])} samples with found objects")
    print("credit AUROC against background: "
          + ", ".join(f"{k} {mean(v):.3f}" for k, v in aurocs.items()))  # fmt: skip
    print("mean k3 divergence per token: "
          + ", ".join(f"{k} {mean(v):.4f}" for k, v in divergence.items()))  # fmt: skip


if __name__ == "__main__":
    main()
