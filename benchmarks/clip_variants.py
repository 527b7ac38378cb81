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
- `--vision-layers L`: a deeper image tower.

A run takes about 18-22 minutes on one thread (1500 steps of batch 128).

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
    SCENES,
    STAGE_STEPS,
    aesthetic_rank_accuracy,
    clip_caption_rank_accuracy,
    train_aesthetic,
    train_clip,
)
from t2i_gcpo.toy.models import shapes_clip_config, shapes_tokenizer


def clip_model(vision_layers: int | None, folder: Path):
    """A freshly initialised shapes CLIP (the shipped architecture, or a deeper image tower)."""
    config = shapes_clip_config()
    name = "shapes-clip-variant"
    if vision_layers:
        config["vision_cfg"]["layers"] = vision_layers
    (folder / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{name}.json")
    return open_clip.create_model(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="the reward stage's seed (shipped: 1)")
    parser.add_argument("--pairs", type=int, default=0)
    parser.add_argument("--mined", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=STAGE_STEPS["clip"])
    parser.add_argument("--vision-layers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="append the JSON line here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shapes_tokenizer(append_eos=True).save_pretrained(folder)
        context = shapes_clip_config()["text_cfg"]["context_length"]
        tokenizer = HFTokenizer(str(folder), context_length=context)
        clock = time.perf_counter()
        torch.manual_seed(args.seed + 1)  # as build_reward_assets seeds the CLIP
        model = clip_model(args.vision_layers, folder)
        train_clip(
            model, tokenizer, args.steps, batch_size=args.batch_size, seed=args.seed,
            n_scenes=SCENES["clip"], pairs_per_step=args.pairs, mined_negatives=args.mined,
            progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - clock
        torch.manual_seed(args.seed + 2)  # and the head
        head = AestheticMLP(input_size=shapes_clip_config()["embed_dim"])
        train_aesthetic(
            head, model, STAGE_STEPS["aesthetic"], seed=args.seed, n_scenes=SCENES["aesthetic"],
            progress=False,
        )  # fmt: skip
        ranking = clip_caption_rank_accuracy(model, tokenizer, S.random_scenes(600, 11, "eval"))
    row = {
        key: getattr(args, key)
        for key in ("seed", "pairs", "mined", "batch_size", "steps", "vision_layers", "threads")
    }
    row["clip_seconds"] = round(seconds)
    row.update({f"clip/{k}": round(100 * v, 1) for k, v in sorted(ranking.items())})
    row["aesthetic"] = round(100 * aesthetic_rank_accuracy(head.eval(), model), 1)
    print(json.dumps(row))
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
