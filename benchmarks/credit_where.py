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
   AUROC of the credit for their patches against the rest; and the extras alone (objects the
   oracle detects but does not match to the prompt), split into those of a class the prompt
   names and the others (another class, or none the oracle can name), with their patches' mean
   credit weight, divergence and log p prompt - negative: how hard a GCPO update pushes the
   objects a policy draws beyond its prompt, where GRPO weighs every token 1.
2. The blame test (`t2i-gcpo eval`'s blame_auroc), against the null negative whatever the
   view: each right sample has one named object redrawn wrongly in place (another class or
   colour) and is scored again; per change and in all, the AUROC against the untouched tokens,
   and the mean log p(token | prompt) - log p(token | null), for
       first  the first redrawn token in raster order (blame_first_auroc),
       rest   the other redrawn tokens,
       all    every redrawn token (blame_auroc).
3. What one training step on these samples does to the matched objects' tokens, the extras'
   and the rest (the ground): each prompt's samples are a group, scored by the shapes oracle
   (`--reward-mode`), and the mean of advantage x the kind's share of the token weights is
   given under GRPO (weight 1) and GCPO (its credit); see Push.

    python benchmarks/credit_where.py [--policy shapes] [--samples 2] [--view null]
        [--reward-mode share]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from t2i_gcpo.algos import GCPO, credit_preset
from t2i_gcpo.algos.advantages import group_advantages
from t2i_gcpo.algos.metrics import patch_coverage, token_auroc
from t2i_gcpo.data.negatives import prompts_vocabulary
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


def lead_patches(patches: torch.Tensor, grid) -> torch.Tensor:
    """An object's patches (T,) bool -> (T,) bool: those in its first row of patches."""
    rows = patches.view(grid)
    lead = torch.zeros_like(rows)
    if rows.any():
        first = rows.any(dim=1).nonzero()[0, 0]
        lead[first] = rows[first]
    return lead.flatten()


def token_kinds(
    masks: torch.Tensor, grid: tuple[int, int], tiles: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Found object masks (K, H, W) -> (T,) bool per kind: lead, rest, all, background; with
    `tiles` (T,) long, which ground tile each patch is drawn as (0 the flat one, -1 none), the
    background split into flat, textured and unmatched patches too."""
    lead = torch.zeros(grid[0] * grid[1], dtype=torch.bool)
    objects = torch.zeros_like(lead)
    for mask in masks:
        covered = (patch_coverage(mask, grid) > 0).flatten()
        objects |= covered
        lead |= lead_patches(covered, grid)
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


def extra_objects(matched: torch.Tensor, detections: list, grid) -> list[tuple]:
    """The detections that are not among the matched masks (K, H, W), each with its patches
    (T,) bool outside the matched objects' patches."""
    claimed = token_kinds(matched, grid)["all"]
    return [
        (d, (patch_coverage(d.mask, grid) > 0).flatten() & ~claimed)
        for d in detections
        if not any(torch.equal(d.mask, mask) for mask in matched)
    ]


class Extras:
    """Part 1, last lines: credit on the objects detected beyond those matched to the prompt."""

    def __init__(self) -> None:
        self.weight: dict[str, list[float]] = {"named": [], "other": []}
        self.divergence: dict[str, list[float]] = {"named": [], "other": []}
        self.gap: dict[str, list[float]] = {"named": [], "other": []}
        self.per_image: dict[str, list[int]] = {"named": [], "other": []}

    def add(self, extras: list, named: set, credit, div, gap) -> None:
        """One sample: its extras as (Detection, patches (T,) bool) pairs (see extra_objects),
        the classes its prompt names, and its credit, divergence and log p prompt - negative
        (T,)."""
        counts = {"named": 0, "other": 0}
        for detection, patches in extras:
            kind = "named" if detection.shape in named else "other"
            counts[kind] += 1
            if patches.any():
                self.weight[kind].append(credit[patches].mean().item())
                self.divergence[kind].append(div[patches].mean().item())
                self.gap[kind].append(gap[patches].mean().item())
        for kind, n in counts.items():
            self.per_image[kind].append(float(n))

    def report(self) -> str:
        return "extra objects (detected, not matched to the prompt): " + "; ".join(
            f"{label} {mean(self.per_image[kind]):.2f} an image, mean credit weight "
            f"{mean(self.weight[kind]):.3f}, mean k3 divergence {mean(self.divergence[kind]):.4f}, "
            f"mean log p prompt - negative {mean(self.gap[kind]):.3f}"
            for kind, label in (("named", "named class"), ("other", "other or no class"))
        )


class Push:
    """Part 3: what one policy-gradient step on these samples does to each kind of token, at
    the first pass (ratio 1): the mean over samples of the advantage times the kind's share of
    the sample's token weights, the credit under GCPO (credit_weighted: sum(A w) / sum(w), and
    the credit's mean is 1) and 1 under GRPO. Positive: the step raises those tokens' log
    probability on the whole. The kinds split the tokens: the matched objects' and the extras'
    first rows of patches (where raster order starts an object) and their other rows, and the
    ground."""

    KINDS = ("matched lead", "matched rest", "extras lead", "extras rest", "ground")

    def __init__(self) -> None:
        self.push = {(algo, kind): [] for algo in ("grpo", "gcpo") for kind in self.KINDS}

    @staticmethod
    def kinds(matched: torch.Tensor, extras: list, grid) -> dict[str, torch.Tensor]:
        """A sample's matched masks (K, H, W) and extras (see extra_objects) -> KINDS' (T,)
        bool masks."""
        split = token_kinds(matched, grid)
        kinds = {
            "matched lead": split["lead"],
            "matched rest": split["rest"],
            "extras lead": torch.zeros_like(split["all"]),
            "extras rest": torch.zeros_like(split["all"]),
        }
        for _, patches in extras:
            lead = lead_patches(patches, grid)
            kinds["extras lead"] |= lead
            kinds["extras rest"] |= patches & ~lead
        kinds["extras rest"] &= ~kinds["extras lead"]
        taken = torch.stack(list(kinds.values())).any(dim=0)
        kinds["ground"] = ~taken
        return kinds

    def add(self, advantage: float, kinds: dict, credit: torch.Tensor) -> None:
        """One sample: its advantage, its (T,) bool masks of KINDS, its credit (T,)."""
        tokens = credit.numel()
        for kind in self.KINDS:
            where = kinds[kind]
            self.push[("grpo", kind)].append(advantage * where.sum().item() / tokens)
            self.push[("gcpo", kind)].append(advantage * credit[where].sum().item() / tokens)

    def report(self) -> str:
        lines = [
            f"one step's push on each kind of token ({len(self.push[('grpo', 'ground')])} "
            "samples; mean advantage x the kind's share of the token weight):",
            "| tokens | GRPO | GCPO | GCPO / GRPO |",
            "|---|---|---|---|",
        ]
        rows = [(kind, (kind,)) for kind in self.KINDS]
        rows.append(("every object's lead", ("matched lead", "extras lead")))
        for label, parts in rows:
            grpo, gcpo = (
                sum(mean(self.push[(algo, kind)]) for kind in parts) for algo in ("grpo", "gcpo")
            )
            lines.append(f"| {label} | {grpo:+.4f} | {gcpo:+.4f} | {gcpo / grpo:.2f} |")
        return "\n".join(lines)


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
    parser.add_argument(
        "--reward-mode",
        default="share",
        choices=("share", "strict"),
        help="the shapes oracle's mode for part 3's advantages (share: the default run's)",
    )
    args = parser.parse_args()

    policy = load_policy(args.policy, device="cpu")
    records, judge, preset = resolve_prompts(args.prompts), ShapesOracle(), credit_preset(GCPO)
    grid = tuple(policy.grid)
    rows, extras, push, blame = ObjectRows(), Extras(), Push(), Blame(policy, preset)
    reward = ShapesOracle(args.reward_mode)
    tile_codes = torch.full((policy.image_tokenizer.codebook_size,), -1)
    for index, tile in enumerate(TILES):  # each ground tile's code: an image of it alone
        tile_codes[policy.encode(tile.repeat(1, grid[0], grid[1])[None])[0, 0]] = index
    batches = sampled_batches(
        policy, records, args.samples, policy.default_cfg_scale, seed=args.seed
    )
    vocab = prompts_vocabulary(records)
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
        advantages = group_advantages(reward(images, prompts, metadata), args.samples)
        for i, verdict in enumerate(verdicts):
            if len(verdict.masks) > 0 and applies[i]:
                tiles = tile_codes[rollout.tokens[i].cpu()]
                every = torch.stack([d.mask for d in detected[i]])
                rows.add(verdict.masks, grid, credit[i].cpu(), div[i].cpu(), tiles, every)
            if applies[i]:
                named = {req["class"] for req in metadata[i]["include"]}
                gap = (rollout.logp_pos[i].float() - logp_neg[i]).cpu()
                others = extra_objects(verdict.masks, detected[i], grid)
                extras.add(others, named, credit[i].cpu(), div[i].cpu(), gap)
                kinds = Push.kinds(verdict.masks, others, grid)
                push.add(advantages[i].item(), kinds, credit[i].cpu())
            edit = wrong_edit(images[i], metadata[i], args.seed + i) if verdict.correct else None
            if edit is not None:
                blame.add(prompts[i], rollout.tokens[i].cpu(), *edit)

    print(f"policy {args.policy}, {args.samples} samples per prompt of {args.prompts}")
    print(f"part 1 against the {args.view} negative, the blame test against the null one")
    print(rows.report())
    print(extras.report())
    print(push.report())
    print(blame.report())


if __name__ == "__main__":
    main()
