"""Where a policy's GCPO credit goes on its held-out samples, split by the kind of token.

In raster order an object is decided on its first tokens; the tokens after them copy its colour
and outline from the tokens before, whatever the prompt says. This script measures that in two
ways (the gcpo preset's credit; AUROC 0.5 = chance):

1. Against the negative `--view` (null, attribute or position; see t2i_gcpo.evaluation): on
   the objects the shapes oracle matches to each sample's prompt (the masks its verdict
   returns), the AUROC of the credit against the background patches, the mean k3 divergence
   and the mean credit weight, for
       lead   the first row of patches of each found object,
       rest   the object's other patches,
       all    every object patch (what `t2i-gcpo eval` reports as object_auroc);
   and the same for every object patch against each part of the background alone:
       flat      background patches drawn as the flat tile (mostly the corners of objects'
                 boxes, which the world draws flat whatever the texture: their look follows
                 from the object, so the prompt decides them too),
       textured  background patches drawn as one of the other ground tiles (the prompt-free
                 ground),
       unmatched the rest of the background: coloured patches outside the objects matched
                 to the prompt (on the shipped policy 83% of them lie in objects the oracle
                 detects but does not match: one more than the count named, another class or
                 colour, a piece of another colour inside a shape; the rest are fragments
                 too small to detect);
   and, with every object the oracle detects counted as object (those matched to the prompt
   and the others: an extra object, a fragment of another colour, a shape it cannot name), the
   AUROC of the credit for their patches against the rest.
2. The blame test (`t2i-gcpo eval`'s blame_auroc), against the null negative whatever the
   view: each right sample has one named object redrawn wrongly in place (another class or
   colour) and is scored again; per change and in all, the AUROC against the untouched tokens,
   and the mean log p(token | prompt) - log p(token | null), for
       first  the first redrawn token in raster order (blame_first_auroc),
       rest   the other redrawn tokens,
       all    every redrawn token (blame_auroc).

    python benchmarks/credit_where.py [--policy shapes] [--samples 2] [--view null]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from t2i_gcpo.algos import GCPO, credit_preset
from t2i_gcpo.algos.metrics import patch_coverage, token_auroc
from t2i_gcpo.data.geneval import is_geneval, vocabulary
from t2i_gcpo.data.prompts import resolve_prompts
from t2i_gcpo.evaluation import (
    first_tokens,
    judge_images,
    sampled_batches,
    view_logprobs,
    view_negatives,
)
from t2i_gcpo.policies import load_policy, score_tokens
from t2i_gcpo.toy.oracle import detect, wrong_edit
from t2i_gcpo.toy.rewards import ShapesOracle
from t2i_gcpo.toy.scenes import TILES


def token_kinds(
    masks: torch.Tensor, grid: tuple[int, int], tiles: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Found object masks (K, H, W) -> (T,) bool per kind: lead, rest, all, background; with
    `tiles` (T,) long, which ground tile each patch is drawn as (0 the flat one, -1 none), the
    background split into flat, textured and unmatched patches too."""
    lead = torch.zeros(grid, dtype=torch.bool)
    objects = torch.zeros(grid, dtype=torch.bool)
    for mask in masks:
        covered = patch_coverage(mask, grid) > 0
        objects |= covered
        first_row = covered.any(dim=1).nonzero()[0, 0]
        lead[first_row] |= covered[first_row]
    lead, objects = lead.flatten(), objects.flatten()
    kinds = {"lead": lead, "rest": objects & ~lead, "all": objects, "background": ~objects}
    if tiles is not None:
        kinds.update(flat=~objects & (tiles == 0), textured=~objects & (tiles > 0))
        kinds["unmatched"] = ~objects & (tiles < 0)
    return kinds


def redrawn_kinds(moved: torch.Tensor) -> dict[str, torch.Tensor]:
    """moved (T,) bool, the redrawn tokens -> (T,) bool per kind: first, rest, all."""
    first = first_tokens(moved[None])[0]
    return {"first": first, "rest": moved & ~first, "all": moved}


def mean(values: list) -> float:
    return torch.tensor(values).nanmean().item() if len(values) else float("nan")


class ObjectRows:
    """Part 1: credit on found objects' lead and other rows against the background."""

    def __init__(self) -> None:
        self.aurocs: dict[str, list[float]] = {"lead": [], "rest": [], "all": []}
        self.against: dict[str, list[float]] = {"flat": [], "textured": [], "unmatched": []}
        kinds = ("lead", "rest", "background", "flat", "textured", "unmatched")
        self.divergence: dict[str, list[float]] = {kind: [] for kind in kinds}
        self.weight: dict[str, list[float]] = {kind: [] for kind in kinds}
        self.shares: dict[str, list[float]] = {"flat": [], "textured": [], "unmatched": []}
        self.detected: list[float] = []

    def add(
        self,
        masks: torch.Tensor,
        grid,
        credit: torch.Tensor,
        div: torch.Tensor,
        tiles: torch.Tensor,
        detected: torch.Tensor,
    ) -> None:
        """One sample: its found masks, its credit and divergence (T,), the ground tile each
        of its patches is (T,) long (see token_kinds), and every object detected in it (K', H,
        W) bool."""
        kinds = token_kinds(masks, grid, tiles)
        anything = token_kinds(detected, grid)["all"]
        if anything.any() and not anything.all():
            self.detected.append(token_auroc(credit[None], anything[None])[0].item())
        background = kinds["background"]
        for kind, values in self.aurocs.items():
            valid = (kinds[kind] | background)[None]
            values.append(token_auroc(credit[None], kinds[kind][None], valid)[0].item())
        if background.any():
            for part, values in self.shares.items():
                values.append((kinds[part].sum() / background.sum()).item())
        for part, values in self.against.items():
            if kinds[part].any():
                valid = (kinds["all"] | kinds[part])[None]
                values.append(token_auroc(credit[None], kinds["all"][None], valid)[0].item())
        for kind in self.divergence:
            if kinds[kind].any():
                self.divergence[kind].append(div[kinds[kind]].mean().item())
                self.weight[kind].append(credit[kinds[kind]].mean().item())

    def report(self) -> str:
        return (
            f"{len(self.aurocs['all'])} samples with found objects\n"
            "credit AUROC against background: "
            + ", ".join(f"{k} {mean(v):.3f}" for k, v in self.aurocs.items())
            + "\ncredit AUROC of all object patches against a part of the background: "
            + ", ".join(f"{k} ground {mean(v):.3f}" for k, v in self.against.items())
            + "\ncredit AUROC of every detected object's patches against the rest: "
            + f"{mean(self.detected):.3f}"
            + "\nshare of the background: "
            + ", ".join(f"{k} {mean(v):.3f}" for k, v in self.shares.items())
            + "\nmean k3 divergence per token: "
            + ", ".join(f"{k} {mean(v):.4f}" for k, v in self.divergence.items())
            + "\nmean credit weight per token (a sample's mean is 1; GRPO's is 1 everywhere): "
            + ", ".join(f"{k} {mean(v):.3f}" for k, v in self.weight.items())
        )


class Blame:
    """Part 2: the blame test's credit on the first redrawn token, the rest and all."""

    def __init__(self, policy, preset) -> None:
        self.policy, self.preset = policy, preset
        self.figures: dict[tuple[str, str, str], list[float]] = defaultdict(list)

    def add(self, prompt: str, tokens: torch.Tensor, edited: torch.Tensor, change: dict) -> None:
        """One right sample (its prompt and tokens (T,)), redrawn as `edited` by `change`."""
        spliced = self.policy.encode(edited[None])
        moved = spliced[0].cpu() != tokens
        if not moved.any():
            return
        logp_pos = score_tokens(self.policy, [prompt], spliced)
        logp_null = score_tokens(self.policy, [prompt], spliced, "null")
        divergence, credit = self.preset.token_credit(logp_pos, logp_null)
        gap = (logp_pos - logp_null)[0].cpu()
        changed = "class" if "shape" in change else "colour"
        for kind, where in redrawn_kinds(moved).items():
            if not where.any():
                continue
            valid = (where | ~moved)[None]
            for group in (changed, "all"):
                for name, score in (("credit", credit), ("divergence", divergence)):
                    auroc = token_auroc(score.cpu(), where[None], valid)[0].item()
                    self.figures[(group, kind, name)].append(auroc)
                self.figures[(group, kind, "gap")].append(gap[where].mean().item())
                if kind == "first":
                    self.figures[(group, "untouched", "gap")].append(gap[~moved].mean().item())

    def report(self) -> str:
        counts = ", ".join(
            f"{g} {len(self.figures[(g, 'all', 'credit')])}" for g in ("class", "colour", "all")
        )
        lines = [
            f"blame-test images per change: {counts}",
            "| change | redrawn tokens | AUROC credit | AUROC divergence | log p prompt - null |",
            "|---|---|---|---|---|",
        ]
        for group in ("class", "colour", "all"):
            for kind in ("first", "rest", "all"):
                row = [self.figures[(group, kind, n)] for n in ("credit", "divergence", "gap")]
                cells = " | ".join(f"{mean(v):.3f}" for v in row)
                lines.append(f"| {group} | {kind} | {cells} |")
            untouched = mean(self.figures[(group, "untouched", "gap")])
            lines.append(f"| {group} | untouched | | | {untouched:.3f} |")
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="shapes", help="policy name or folder")
    parser.add_argument("--prompts", default="shapes:eval")
    parser.add_argument("--samples", type=int, default=2, help="samples per prompt")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--view", default="null", choices=("null", "attribute", "position"))
    args = parser.parse_args()

    policy = load_policy(args.policy, device="cpu")
    records, judge, preset = resolve_prompts(args.prompts), ShapesOracle(), credit_preset(GCPO)
    grid = tuple(policy.grid)
    rows, blame = ObjectRows(), Blame(policy, preset)
    tile_codes = torch.full((policy.image_tokenizer.codebook_size,), -1)
    for index, tile in enumerate(TILES):  # each ground tile's code: an image of it alone
        tile_codes[policy.encode(tile.repeat(1, grid[0], grid[1])[None])[0, 0]] = index
    batches = sampled_batches(
        policy, records, args.samples, policy.default_cfg_scale, seed=args.seed
    )
    vocab = vocabulary(r.metadata for r in records if is_geneval(r.metadata))
    for chunk, rollout, images, metadata in batches:
        prompts = rollout.sample_prompts
        verdicts = judge_images(judge, images, prompts, metadata)
        negatives = view_negatives(chunk, args.view, vocab, args.seed)
        captions = None if negatives is None else [negatives[i] for i in rollout.prompt_index]
        logp_neg, applies = view_logprobs(
            policy, prompts, rollout.tokens, captions, rollout.logp_neg
        )
        div, credit = preset.token_credit(rollout.logp_pos.float(), logp_neg)
        detected = detect(images)
        for i, verdict in enumerate(verdicts):
            if len(verdict.masks) > 0 and applies[i]:
                tiles = tile_codes[rollout.tokens[i].cpu()]
                every = torch.stack([d.mask for d in detected[i]])
                rows.add(verdict.masks, grid, credit[i].cpu(), div[i].cpu(), tiles, every)
            edit = wrong_edit(images[i], metadata[i], args.seed + i) if verdict.correct else None
            if edit is not None:
                blame.add(prompts[i], rollout.tokens[i].cpu(), *edit)

    print(f"policy {args.policy}, {args.samples} samples per prompt of {args.prompts}")
    print(f"part 1 against the {args.view} negative, the blame test against the null one")
    print(rows.report())
    print(blame.report())


if __name__ == "__main__":
    main()
