"""The object AUROC against attribute negatives, split by what each negative changes.

`t2i-gcpo eval`'s credit/attribute/object_auroc gives every object the shapes oracle matches to
the prompt the part of a positive, and every other token the part of a negative. But an
attribute negative changes one thing the prompt names (a class, a colour, a count, or the two
colours swapped; data.negatives.attribute_caption), so some matched objects look the same under
the negative as under the prompt ("a circle and a square" against "a circle and a triangle":
the circle), and a count change moves no drawn object but where one more would go. This script
draws the same samples as benchmarks/shapes_quality.py (the held-out prompts, `--samples` each,
seed 0, the policy's own guidance), scores them under the same negatives, and gives the
per-sample AUROC (the mean over samples; 0.5 = chance) for each category and kind of change:

    all        every matched object's patches against the rest (the figure shapes_quality.py
               reports, reproduced in the last rows)
    changed    the patches of the objects whose requirement the negative changes (both for a
               swap), against the background (the unchanged objects left out)
    unchanged  the patches of the other matched objects, against the background (the changed
               ones left out)
    gap changed  the mean log p(token | prompt) - log p(token | negative) over the changed
               objects' patches (how much the negative's words move them), and
    gap ground   the same over the background

and, for scale, the "all" figure of two reference credits on the same samples and masks:

    ideal objects    1 on every patch of the changed objects, 0 elsewhere: credit that finds
                     exactly what the negative changes (the unchanged objects tie with the
                     background)
    ideal first row  1 on the first token row of each changed object, 0 elsewhere: where that
                     credit belongs in raster order, where a policy that completes an object
                     from its first tokens decides it

    python benchmarks/credit_by_change.py [--assets DIR] [--samples 8] [--threads 2]
        [--split train]   # the same on the pretraining prompts
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from t2i_gcpo.algos import GCPO, credit_preset
from t2i_gcpo.algos.metrics import patch_coverage, token_auroc
from t2i_gcpo.data.negatives import prompts_vocabulary
from t2i_gcpo.evaluation import sampled_batches, view_logprobs, view_negatives
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.assets import load_shapes_policy
from t2i_gcpo.toy.oracle import chosen_objects, detect, objects_by_class
from t2i_gcpo.toy.prompts import shapes_prompt_set

GROUPS = (
    "all", "changed", "unchanged", "gap changed", "gap ground", "ideal objects", "ideal first row"
)  # fmt: skip
WHOLE_RECORD_CHANGES = ("swap_colors", "swap_objects", "relation")
"""Changes that concern every object the record names (their colours or places)."""


def changed_indices(metadata: dict, negative: str) -> tuple[str, set[int]]:
    """The kind of change that turns `metadata`'s prompt into `negative`, and the indices of
    its include requirements that the change touches."""
    for kind, record in S.hard_negative_changes(metadata):
        if record["prompt"] != negative:
            continue
        include = metadata["include"]
        if kind in WHOLE_RECORD_CHANGES:
            return kind, set(range(len(include)))
        pairs = zip(include, record["include"], strict=True)
        return kind, {i for i, (a, b) in enumerate(pairs) if a != b}
    raise ValueError(f"{negative!r} is not one change of {metadata['prompt']!r}")


def patches(detections: list, grid: tuple[int, int]) -> torch.Tensor:
    """(T,) bool: the tokens whose patch some of `detections`' masks touches."""
    if not detections:
        return torch.zeros(grid[0] * grid[1], dtype=torch.bool)
    union = torch.stack([d.mask for d in detections]).any(dim=0)
    return patch_coverage(union, grid).flatten() > 0


def first_rows(detections: list, grid: tuple[int, int]) -> torch.Tensor:
    """(T,) bool: for each of `detections`, the tokens of the first token row (raster order)
    that its mask touches."""
    out = torch.zeros(grid, dtype=torch.bool)
    for detection in detections:
        touched = patch_coverage(detection.mask, grid) > 0
        rows = touched.any(dim=1).nonzero()
        if len(rows):
            out[rows[0, 0]] |= touched[rows[0, 0]]
    return out.flatten()


def measure(policy, records, samples: int, seed: int = 0) -> dict[tuple, list[float]]:
    """{(group, tag, kind): per-sample AUROCs} over `records`' samples."""
    vocab = prompts_vocabulary(records)
    preset, grid = credit_preset(GCPO), tuple(policy.grid)
    out: dict[tuple, list[float]] = defaultdict(list)
    batches = sampled_batches(policy, records, samples, policy.default_cfg_scale, 16, seed)
    for chunk, rollout, images, metadata in batches:
        negatives = view_negatives(chunk, "attribute", vocab, seed)
        captions = [negatives[i] for i in rollout.prompt_index.tolist()]
        logp_neg, _ = view_logprobs(
            policy, rollout.sample_prompts, rollout.tokens, captions, rollout.logp_neg
        )
        credit = preset.token_credit(rollout.logp_pos.float(), logp_neg)[1].cpu()
        gaps = (rollout.logp_pos.float() - logp_neg).cpu()
        for row, gap, meta, caption, found in zip(
            credit, gaps, metadata, captions, detect(images), strict=True
        ):
            if caption is None:
                continue
            kind, touched = changed_indices(meta, caption)
            chosen = chosen_objects(objects_by_class(found), meta)
            if not any(chosen):
                continue  # no matched object: shapes_quality.py leaves the sample out too
            moved = [d for i, ds in enumerate(chosen) if i in touched for d in ds]
            changed = patches(moved, grid)
            same = patches([d for i, ds in enumerate(chosen) if i not in touched for d in ds], grid)
            scores, key, objects = row[None], (meta["tag"], kind), (changed | same)[None]
            out[("all", *key)].append(token_auroc(scores, objects).item())
            for group, ideal in (
                ("ideal objects", changed),
                ("ideal first row", first_rows(moved, grid)),
            ):
                out[(group, *key)].append(token_auroc(ideal.float()[None], objects).item())
            for group, positives, left_out in (
                ("changed", changed, same),
                ("unchanged", same, changed),
            ):
                if positives.any():
                    auroc = token_auroc(scores, positives[None], ~left_out[None])
                    out[(group, *key)].append(auroc.item())
            out[("gap changed", *key)].append(gap[changed].mean().item())
            out[("gap ground", *key)].append(gap[~(changed | same)].mean().item())
    return out


def mean(values: list[float]) -> tuple[float, int]:
    finite = [v for v in values if v == v]
    return (sum(finite) / len(finite) if finite else float("nan")), len(finite)


def table(out: dict[tuple, list[float]]) -> str:
    keys = sorted({key[1:] for key in out})
    kinds = sorted({kind for _, kind in keys})
    lines = [
        "| category | change | " + " | ".join(f"{g} (samples)" for g in GROUPS) + " |",
        "|---|---|" + "---|" * len(GROUPS),
    ]

    def row(tag: str, kind: str, pick) -> str:
        picked = [key for key in keys if pick(key)]
        cells = [mean([v for key in picked for v in out.get((g, *key), [])]) for g in GROUPS]
        return (
            f"| {tag} | {kind} | "
            + " | ".join("" if n == 0 else f"{m:.3f} ({n})" for m, n in cells)
            + " |"
        )

    lines += [row(tag, kind, lambda k, t=tag, c=kind: k == (t, c)) for tag, kind in keys]
    lines += [row("every", kind, lambda k, c=kind: k[1] == c) for kind in kinds]
    lines.append(row("every", "every", lambda k: True))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", default=None, help="asset folder (default: the shipped)")
    parser.add_argument("--samples", type=int, default=8, help="policy samples per eval prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--held-out-rule", choices=S.HELD_OUT_RULES, default=S.HELD_OUT_RULE)
    parser.add_argument(
        "--split", choices=("eval", "train"), default="eval",
        help="the held-out prompts (shapes_quality.py's) or the pretraining ones",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    S.HELD_OUT_RULE = args.held_out_rule
    start = time.perf_counter()
    policy = load_shapes_policy(root=args.assets)
    out = measure(policy, shapes_prompt_set(args.split), args.samples, args.seed)
    print(table(out))
    print(f"(measured in {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
