"""The shapes CLIP's reward stage under training variants, measured as the build measures it.

One run trains the CLIP and its aesthetic head exactly as `toy build`'s reward stage does
(`build_reward_assets`: seeds, scenes, steps, the head), with one change to the CLIP's training,
and prints one JSON line: the share of 600 eval-split scenes whose prompt scores above all its
hard negatives, per category (benchmarks/shapes_quality.py's figure), and the aesthetic head's
clean-above-degraded share. The variants:

- `--pairs P`: P scenes of each batch are drawn for a hard negative of another scene in it
  (`train_clip(pairs_per_step=...)`, image-side hard negatives);
- `--mined M`: M of each scene's 3 text negatives are the ones the CLIP scores highest
  (`train_clip(mined_negatives=...)`);
- `--batch-size B --steps N`: another batch size and step count;
- `--vision-layers L`, `--text-layers L`: a deeper image or text tower;
- `--pos-embed P`: how the image tower's position embedding starts: "sincos-start" (the
  build's: 2-D sines and cosines, then trained), "sincos-frozen" (kept at them) or
  "random-start" (learned from a random start, the build's before 2026-11-29);
- `--degraded N`: N scenes of each batch also have a degraded copy that must score below them
  (`train_clip(degraded_per_step=...)`);
- `--weights W1,...,W6`: how often each category is drawn (CATEGORIES' order; the build's
  CLIP_WEIGHTS by default).

A run takes about 24-28 minutes on one thread (2250 steps of batch 128; 14-22 at 1500).

    python benchmarks/clip_variants.py --seed 1 [--pairs 64] [--mined 2] [--threads 1]
        [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import open_clip
import torch
from open_clip.tokenizer import HFTokenizer

from reward_models.aesthetic_head import AestheticMLP
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.build import (
    CLIP_WEIGHTS,
    DEGRADED_PER_STEP,
    SCENES,
    STAGE_STEPS,
    aesthetic_rank_accuracy,
    clip_caption_rank_accuracy,
    train_aesthetic,
    train_clip,
)
from t2i_gcpo.toy.models import shapes_clip_config, shapes_tokenizer

POS_EMBEDS = ("sincos-start", "sincos-frozen", "random-start")


def clip_model(vision_layers: int | None, text_layers: int | None, pos_embed: str, folder: Path):
    """A freshly initialised shapes CLIP: the build's (`new_shapes_clip`), or with a deeper
    image or text tower, or another start of its position embedding (POS_EMBEDS)."""
    config = shapes_clip_config()
    name = "shapes-clip-variant"
    if vision_layers:
        config["vision_cfg"]["layers"] = vision_layers
    if text_layers:
        config["text_cfg"]["layers"] = text_layers
    if pos_embed == "random-start":
        config["vision_cfg"]["pos_embed_type"] = "learnable"
    (folder / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{name}.json")
    model = open_clip.create_model(name)
    if pos_embed == "sincos-start":  # as new_shapes_clip
        model.visual.positional_embedding.requires_grad_(True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="the reward stage's seed (shipped: 1)")
    parser.add_argument("--pairs", type=int, default=0)
    parser.add_argument("--mined", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=STAGE_STEPS["clip"])
    parser.add_argument("--vision-layers", type=int, default=None)
    parser.add_argument("--text-layers", type=int, default=None)
    parser.add_argument("--pos-embed", default=POS_EMBEDS[0], choices=POS_EMBEDS)
    parser.add_argument("--degraded", type=int, default=DEGRADED_PER_STEP)
    parser.add_argument("--weights", default=None, help="six comma-separated category weights")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="append the JSON line here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = CLIP_WEIGHTS if args.weights is None else tuple(map(float, args.weights.split(",")))
    if len(weights) != len(S.CATEGORIES):
        parser.error(f"--weights needs {len(S.CATEGORIES)} values; got {args.weights!r}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shapes_tokenizer(append_eos=True).save_pretrained(folder)
        context = shapes_clip_config()["text_cfg"]["context_length"]
        tokenizer = HFTokenizer(str(folder), context_length=context)
        clock = time.perf_counter()
        torch.manual_seed(args.seed + 1)  # as build_reward_assets seeds the CLIP
        model = clip_model(args.vision_layers, args.text_layers, args.pos_embed, folder)
        train_clip(
            model, tokenizer, args.steps, batch_size=args.batch_size, seed=args.seed,
            n_scenes=SCENES["clip"], pairs_per_step=args.pairs, mined_negatives=args.mined,
            degraded_per_step=args.degraded, weights=weights, progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - clock
        torch.manual_seed(args.seed + 2)  # and the head
        head = AestheticMLP(input_size=shapes_clip_config()["embed_dim"])
        train_aesthetic(
            head, model, STAGE_STEPS["aesthetic"], seed=args.seed, n_scenes=SCENES["aesthetic"],
            progress=False,
        )  # fmt: skip
        ranking = clip_caption_rank_accuracy(model, tokenizer, S.random_scenes(600, 11, "eval"))
    keys = "seed pairs mined batch_size steps vision_layers text_layers pos_embed degraded weights"
    keys += " threads"
    row = {key: getattr(args, key) for key in keys.split()}
    row["clip_seconds"] = round(seconds)
    row.update({f"clip/{k}": round(100 * v, 1) for k, v in sorted(ranking.items())})
    row["aesthetic"] = round(100 * aesthetic_rank_accuracy(head.eval(), model), 1)
    print(json.dumps(row))
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
