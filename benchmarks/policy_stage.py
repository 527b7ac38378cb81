"""The shapes build's policy stage alone, under pretraining variants, and why held-out samples fail.

Training (`--out DIR`): the policy stage of `toy build` (`pretrain_policy`, from a fresh
`shapes-janus` seeded with `--seed`) over the shipped tokenizer, with the pretraining mix, the
share of wrong prefixes, the colour term's weight, the object boxes' weighting
(`--object-weight`, `--start-weight`, `--start-span`, `--choice-only`; see `pretrain_policy`),
the attention dropout (`--attention-dropout`) and the policy's size (`--hidden-size`,
`--layers`; default: model_configs/shapes-janus.json's) given on the command line; DIR receives an
asset folder (the new policy, the shipped CLIP and aesthetic head) for

    python benchmarks/shapes_quality.py --assets DIR

`--pairs-drawn-in TAG ...` lets those categories' pretraining prompts name the held-out shape
pairs (HELD_OUT_PAIRS) for this stage's train split; the held-out prompts stay the shipped ones,
so those of TAG's categories then count prompts the policy trained on. `--held-out-rule RULE`
trains on another split (scenes.HELD_OUT_RULES; with --failures, samples its eval prompts).

Failures (`--failures [--assets DIR]`): the held-out prompts sampled as shapes_quality.py
samples them (`--samples` a prompt, seed 0, guidance 1), each wrong image sorted by what the
oracle found wrong: a class or count (an object missing or one too many), a colour, both, or
only a relation; one row per category, in percent of its images, with the mean number of
objects the oracle found in an image (named or not) beyond the number the prompt asks for,
and the counting images split into right, too few and too many of the counted class. Then how
many object tokens the policy expects where a true scene has only ground: the
probability it puts on object codes, teacher-forced on train-split scenes, summed over the
tokens outside every object's box (`object_mass_on_ground`). Then, for the held-out prompts
that name a shape pair (two_object, position), which classes the images hold: each of the pair,
both, and a class outside it (`pair_drawn`). Then, for the color_attr images, how the two named
colours come out on the first object found of each class (`colour_pairing`: both right,
swapped, one of them on both, otherwise), by how many of the prompt's colour-shapes the train
split never names (HELD_OUT_COLOR_SHAPES), and how many of the two its colours make swapped
are such (a policy that only shuns colour-shapes it never saw named draws the right pairing
where the swap makes one, without reading which colour word goes with which class). Last, the strict
accuracy on the train split's colors prompts, which the policy was pretrained on: whether it
reads colour words at all.

    python benchmarks/policy_stage.py --out /tmp/variant --share 0.75 --colour-weight 0.2
    python benchmarks/policy_stage.py --failures [--assets /tmp/variant]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

from t2i_gcpo.data.geneval import objects_asked
from t2i_gcpo.evaluation import judge_images, sampled_batches
from t2i_gcpo.toy import build
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.assets import ASSETS_DIR, load_shapes_policy
from t2i_gcpo.toy.models import janus_policy
from t2i_gcpo.toy.prompts import shapes_prompt_set
from t2i_gcpo.toy.rewards import ShapesOracle

KINDS = ("right", "class or count", "colour", "class or count and colour", "relation")


def train(args) -> None:
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; give a new folder")
    S.HELD_OUT_PAIR_TAGS = tuple(t for t in S.HELD_OUT_PAIR_TAGS if t not in args.pairs_drawn_in)
    S.HELD_OUT_RULE = args.held_out_rule
    image_tokenizer = load_shapes_policy().image_tokenizer
    start = time.perf_counter()
    size = {k: v for k, v in (("hidden_size", args.hidden_size), ("num_layers", args.layers)) if v}
    policy = janus_policy("shapes-janus", seed=args.seed, image_tokenizer=image_tokenizer, **size)
    recipe = {
        "colour_weight": args.colour_weight,
        "object_weight": args.object_weight,
        "start_weight": args.start_weight,
        "start_span": args.start_span,
        "choice_only": args.choice_only,
        "attention_dropout": args.attention_dropout,
        "wrong_prefix_share": args.share,
        "category_weights": tuple(args.weights),
    }
    report = build.pretrain_policy(policy, args.steps, seed=args.seed, progress=False, **recipe)
    policy.save(out / "policy")
    shutil.copytree(ASSETS_DIR / "clip", out / "clip")
    shutil.copy(ASSETS_DIR / "aesthetic.safetensors", out / "aesthetic.safetensors")
    report.update(recipe, steps=args.steps, seed=args.seed, threads=args.threads)
    report["pairs_drawn_in"] = args.pairs_drawn_in
    report["held_out_rule"] = args.held_out_rule
    report["size"] = size
    report["seconds"] = round(time.perf_counter() - start, 1)
    (out / "stage_report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))


def failure_kind(correct: bool, reason: str) -> str:
    """Sort one verdict of the shapes oracle by the first thing it found wrong of each kind."""
    if correct:
        return KINDS[0]
    counted = bool(re.search(r">= \d+, found \d+|< \d+$|< \d+;", reason))
    coloured = "found [" in reason
    if counted and coloured:
        return KINDS[3]
    return KINDS[1] if counted else KINDS[2] if coloured else KINDS[4]


def objects_beyond_prompt(verdict, metadata: dict) -> int:
    """How many more objects the shapes oracle found in an image (named or not) than its
    prompt asks for (negative: fewer)."""
    return verdict.details["found"] - objects_asked(metadata)


def count_error(reason: str) -> str:
    """A counting verdict's reason -> "right", "too few" (fewer of the class than asked) or
    "too many" (the exclude: as many as one more than asked)."""
    if not reason:
        return "right"
    return "too few" if re.search(r">= \d+, found", reason) else "too many"


def pair_drawn(verdict, metadata: dict) -> dict[str, int]:
    """For a prompt that names two classes, from the shapes oracle's verdict: whether it found
    each of them (keyed by class), `both`, and a class outside the pair (`other`), with the
    number of objects it found (`objects`)."""
    pair = {req["class"] for req in metadata["include"]}
    found = set(verdict.details["classes"])
    drawn = {shape: int(shape in found) for shape in sorted(pair)}
    return drawn | {
        "both": int(all(drawn.values())),
        "other": int(bool(found - pair)),
        "objects": verdict.details["found"],
    }


PAIRINGS = ("class missing", "both right", "swapped", "one named colour on both", "other")


def colour_pairing(verdict, metadata: dict) -> str:
    """For a color_attr prompt, from the shapes oracle's verdict: how the colours of the first
    (largest) object found of each named class come out (PAIRINGS), the objects the oracle
    judges; "class missing" where it found no object of a named class."""
    first, second = metadata["include"]
    colour_of: dict[str, str] = {}
    for shape, colour in zip(verdict.details["classes"], verdict.details["colors"], strict=True):
        colour_of.setdefault(shape, colour)
    if first["class"] not in colour_of or second["class"] not in colour_of:
        return PAIRINGS[0]
    drawn = (colour_of[first["class"]], colour_of[second["class"]])
    named = (first["color"], second["color"])
    if drawn == named:
        return PAIRINGS[1]
    if drawn == named[::-1]:
        return PAIRINGS[2]
    return PAIRINGS[3] if drawn[0] == drawn[1] and drawn[0] in named else PAIRINGS[4]


def held_out_colour_shapes(metadata: dict, swapped: bool = False) -> int:
    """How many of a prompt's (colour, class) pairs are HELD_OUT_COLOR_SHAPES; with `swapped`,
    how many of the pairs its two colours make swapped (the first object's colour on the second
    class and the second's on the first)."""
    colours = [r["color"] for r in metadata["include"]]
    classes = [r["class"] for r in metadata["include"]]
    if swapped:
        colours.reverse()
    return sum(pair in S.HELD_OUT_COLOR_SHAPES for pair in zip(colours, classes, strict=True))


@torch.no_grad()
def object_mass_on_ground(policy, scenes, batch_size: int = 32) -> torch.Tensor:
    """(N,): for each scene, teacher-forced under its prompt, the probability the policy puts on
    object codes summed over the tokens outside every object's box (all ground in the truth):
    how many object tokens it expects where the scene has none."""
    object_codes = build.code_colours(policy.image_tokenizer) >= 0
    codes = build.encode_scenes(policy, scenes)
    outside = ~torch.stack([S.box_patches(scene.objects).flatten() for scene in scenes])
    masses = []
    for start in range(0, len(scenes), batch_size):
        rows = slice(start, start + batch_size)
        logits = policy.token_logits([scene.prompt for scene in scenes[rows]], codes[rows])
        mass = logits.float().softmax(-1)[..., object_codes].sum(-1)
        masses.append((mass * outside[rows]).sum(-1))
    return torch.cat(masses)


@torch.no_grad()
def failures(args) -> None:
    S.HELD_OUT_RULE = args.held_out_rule
    policy = load_shapes_policy(root=args.assets)
    kinds: dict[str, Counter] = defaultdict(Counter)
    surplus: dict[str, list[int]] = defaultdict(list)
    pairs: dict[tuple[str, tuple[str, ...]], Counter] = defaultdict(Counter)
    counting: Counter = Counter()
    pairings: dict[int, Counter] = defaultdict(Counter)
    batches = sampled_batches(policy, shapes_prompt_set("eval"), args.samples, cfg_scale=1.0)
    for _, rollout, images, metadata in batches:
        verdicts = judge_images(ShapesOracle(), images, rollout.sample_prompts, metadata)
        for verdict, meta in zip(verdicts, metadata, strict=True):
            kinds[meta["tag"]][failure_kind(verdict.correct, verdict.reason)] += 1
            surplus[meta["tag"]].append(objects_beyond_prompt(verdict, meta))
            if meta["tag"] == "counting":
                counting[count_error(verdict.reason)] += 1
            if meta["tag"] in ("two_object", "position"):
                pair = tuple(sorted(req["class"] for req in meta["include"]))
                pairs[meta["tag"], pair].update(pair_drawn(verdict, meta) | {"images": 1})
            if meta["tag"] == "color_attr":
                held = (held_out_colour_shapes(meta), held_out_colour_shapes(meta, swapped=True))
                pairings[held][colour_pairing(verdict, meta)] += 1
    print("| category | " + " | ".join(KINDS) + " | objects found - asked |")
    print("|---" * (len(KINDS) + 2) + "|")
    for tag, counts in kinds.items():
        total = sum(counts.values())
        cells = [f"{100 * counts[k] / total:.1f}" for k in KINDS]
        cells.append(f"{sum(surplus[tag]) / len(surplus[tag]):+.2f}")
        print(f"| {tag} | " + " | ".join(cells) + " |")
    print("\ncounting images: " + ", ".join(
        f"{kind} {100 * counting[kind] / counting.total():.1f}%"
        for kind in ("right", "too few", "too many")
    ))  # fmt: skip
    scenes = S.random_scenes(192, 5, split="train")
    mass = object_mass_on_ground(policy, scenes).mean().item()
    print(f"object-code probability summed over the ground outside the boxes: {mass:.2f} an image")
    print(f"(teacher-forced on {len(scenes)} train-split scenes under their prompts)")
    print("\n| category | pair | images | each of the pair | both | another class | objects |")
    print("|---" * 7 + "|")
    for (tag, pair), counts in sorted(pairs.items()):
        n = counts["images"]
        each = ", ".join(f"{shape} {100 * counts[shape] / n:.0f}%" for shape in pair)
        rest = [f"{100 * counts[k] / n:.0f}%" for k in ("both", "other")]
        cells = [tag, " and ".join(pair), str(n), each, *rest, f"{counts['objects'] / n:.2f}"]
        print("| " + " | ".join(cells) + " |")
    print(
        "\n| color_attr: held-out colour-shapes named | in the swap | images | "
        + " | ".join(PAIRINGS)
        + " |"
    )
    print("|---" * (len(PAIRINGS) + 3) + "|")
    for (named, swap), counts in sorted(pairings.items()):
        n = counts.total()
        cells = [str(named), str(swap), str(n), *(f"{100 * counts[k] / n:.1f}" for k in PAIRINGS)]
        print("| " + " | ".join(cells) + " |")
    seen = [r for r in shapes_prompt_set("train") if r.metadata["tag"] == "colors"]
    right = [
        verdict.correct
        for _, rollout, images, metadata in sampled_batches(policy, seen, args.samples, 1.0)
        for verdict in judge_images(ShapesOracle(), images, rollout.sample_prompts, metadata)
    ]
    print(f"\ntrain-split colors prompts: {100 * sum(right) / len(right):.1f}% right "
          f"({len(right)} images)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="train a variant into this new asset folder")
    parser.add_argument("--weights", type=float, nargs=6, default=list(build.PRETRAIN_WEIGHTS))
    parser.add_argument("--share", type=float, default=build.WRONG_PREFIX_SHARE)
    parser.add_argument("--colour-weight", type=float, default=build.COLOUR_WEIGHT)
    parser.add_argument("--object-weight", type=float, default=build.OBJECT_WEIGHT)
    parser.add_argument(
        "--start-weight",
        type=lambda v: None if v == "none" else float(v),
        default=build.START_WEIGHT,
        help="a number, or none: the box starts weigh as the rest of the box",
    )
    parser.add_argument("--start-span", choices=build.START_SPANS, default=build.START_SPAN)
    parser.add_argument("--choice-only", action="store_true")
    parser.add_argument("--attention-dropout", type=float, default=build.ATTENTION_DROPOUT)
    parser.add_argument("--pairs-drawn-in", nargs="*", default=[], choices=S.HELD_OUT_PAIR_TAGS)
    parser.add_argument("--held-out-rule", choices=S.HELD_OUT_RULES, default=S.HELD_OUT_RULE)
    parser.add_argument("--hidden-size", type=int, help="the policy's width (default: config's)")
    parser.add_argument("--layers", type=int, help="the policy's depth (default: config's)")
    parser.add_argument("--steps", type=int, default=build.STAGE_STEPS["policy"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--failures", action="store_true", help="sort held-out failures")
    parser.add_argument("--assets", default=None, help="asset folder (default: shipped)")
    parser.add_argument("--samples", type=int, default=8, help="samples per held-out prompt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.failures == bool(args.out):
        parser.error("give either --out DIR (train) or --failures")
    (failures if args.failures else train)(args)


if __name__ == "__main__":
    main()
