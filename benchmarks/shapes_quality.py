"""Measure the shapes world's quality bars on the shipped (or a given) asset folder.

Prints one table:
- the tokenizer's locality (pixels changed in one patch change no other token; a token changed
  changes no pixel outside its patch), counted over random images and patches;
- the oracle per category on true renders, on renders of a hard negative, and on the
  tokenizer's reconstructions;
- the pretrained policy's held-out accuracy per category and GenEval score;
- the tiny CLIP: the prompt above all its hard negatives, per category;
- the aesthetic head: a clean render above its degraded version;
- the credit of the pretrained policy: object AUROC and precision at K, and the blame test,
  against the null, attribute and position negatives.
With --grid it also writes a PNG of policy samples for two eval prompts of each category.
`--held-out-rule` measures on another split's eval prompts (scenes.HELD_OUT_RULES), for a
policy pretrained on that split (benchmarks/policy_stage.py --held-out-rule).

    python benchmarks/shapes_quality.py [--assets DIR] [--samples 8] [--grid FILE.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.tokenizer import HFTokenizer
from safetensors.torch import load_file
from torchvision.utils import save_image

from reward_models.aesthetic_head import AestheticMLP
from t2i_gcpo.evaluation import evaluate_policy
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.assets import load_shapes_policy, shapes_aesthetic_path, shapes_clip_path
from t2i_gcpo.toy.build import aesthetic_rank_accuracy, clip_caption_rank_accuracy
from t2i_gcpo.toy.oracle import judge_batch
from t2i_gcpo.toy.prompts import shapes_prompt_set
from t2i_gcpo.toy.rewards import ShapesOracle


def locality(tokenizer, n_images: int = 50, seed: int = 0) -> dict[str, float]:
    """Tokens changed outside an edited patch, and pixels changed outside a replaced token's
    patch, over random images and positions (both must be 0)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.stack([s.image for s in S.random_scenes(n_images, seed + 1)])
    tokens = tokenizer.encode(images)
    grid, patch = tokenizer.grid[0], tokenizer.patch_size
    token_leaks = pixel_leaks = 0
    for i in range(n_images):
        position = int(torch.randint(grid * grid, (1,), generator=generator))
        row, col = divmod(position, grid)
        block = (slice(None), slice(row * patch, (row + 1) * patch),
                 slice(col * patch, (col + 1) * patch))  # fmt: skip
        edited = images[i].clone()
        edited[block] = torch.rand(3, patch, patch, generator=generator)
        changed = tokenizer.encode(edited[None])[0] != tokens[i]
        changed[position] = False
        token_leaks += int(changed.sum())
        other = tokens[i : i + 1].clone()
        other[0, position] = (other[0, position] + 1) % tokenizer.codebook_size
        moved = (tokenizer.decode(other)[0] != tokenizer.decode(tokens[i : i + 1])[0]).any(dim=0)
        moved[block[1:]] = False
        pixel_leaks += int(moved.sum())
    return {"tokenizer/tokens_changed_outside_patch": token_leaks,
            "tokenizer/pixels_changed_outside_patch": pixel_leaks}  # fmt: skip


def oracle_figures(policy, per_category: int = 100, seed: int = 7) -> dict[str, float]:
    """Oracle accuracy per category on eval-split renders, on renders of one of each record's
    hard negatives, and on the tokenizer's reconstructions of the renders."""
    rng = np.random.default_rng(seed)
    figures = {}
    for tag in S.CATEGORIES:
        pool = [m for m in S.split_metadata("eval") if m["tag"] == tag]
        records = [pool[i] for i in rng.integers(len(pool), size=per_category)]
        scenes = [S.sample_scene(m, rng) for m in records]
        images = torch.stack([s.image for s in scenes])
        negatives = [S.hard_negatives(m) for m in records]
        broken = torch.stack([
            S.sample_scene(n[rng.integers(len(n))], rng).image for n in negatives
        ])  # fmt: skip
        recon = policy.decode(policy.encode(images))
        for name, batch in (("renders", images), ("broken", broken), ("reconstructions", recon)):
            right = [j.correct for j in judge_batch(batch, records)]
            figures[f"oracle/{name}/{tag}"] = sum(right) / len(right)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=None, help="asset folder (default: shipped)")
    parser.add_argument("--samples", type=int, default=8, help="policy samples per eval prompt")
    parser.add_argument("--cfg-scale", type=float, default=None, help="default: the policy's")
    parser.add_argument("--grid", default=None, help="write a PNG of policy samples here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--held-out-rule", choices=S.HELD_OUT_RULES, default=S.HELD_OUT_RULE)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    S.HELD_OUT_RULE = args.held_out_rule
    start = time.perf_counter()
    policy = load_shapes_policy(root=args.assets)
    figures = locality(policy.image_tokenizer)
    figures.update(oracle_figures(policy))
    records = shapes_prompt_set("eval")
    accuracy = evaluate_policy(
        policy,
        records,
        args.samples,
        args.cfg_scale,
        judge=ShapesOracle(),
        negative_views=("null", "attribute", "position"),
    )
    figures.update({f"policy/{k}": v for k, v in accuracy.items()})
    clip_dir = shapes_clip_path(args.assets)
    clip_model = open_clip.create_model(f"local-dir:{clip_dir}").eval()
    tokenizer = HFTokenizer(str(clip_dir), context_length=clip_model.context_length)
    ranking = clip_caption_rank_accuracy(clip_model, tokenizer, S.random_scenes(600, 11, "eval"))
    figures.update({f"clip/prompt_above_hard_negatives/{k}": v for k, v in ranking.items()})
    head = AestheticMLP(clip_model.text_projection.shape[1])
    head.load_state_dict(load_file(shapes_aesthetic_path(args.assets)))
    figures["aesthetic/clean_above_degraded"] = aesthetic_rank_accuracy(head.eval(), clip_model)
    print(f"{'figure':52s} value")
    for key, value in figures.items():
        print(f"{key:52s} {value:.3f}")
    print(f"(measured in {time.perf_counter() - start:.0f} s)")
    if args.grid:
        scale = policy.default_cfg_scale if args.cfg_scale is None else args.cfg_scale
        write_grid(policy, records, args.grid, scale)


def write_grid(policy, records, path: str, cfg_scale: float, per_prompt: int = 6) -> None:
    """One row per eval prompt (two of each category): samples, 3x enlarged."""
    chosen = []
    for tag in S.CATEGORIES:
        chosen += [r for r in records if r.metadata["tag"] == tag][:2]
    rollout = policy.sample(
        [r.prompt for r in chosen],
        samples_per_prompt=per_prompt,
        cfg_scale=cfg_scale,
        generator=torch.Generator().manual_seed(0),
    )
    images = F.interpolate(policy.decode(rollout.tokens), scale_factor=3, mode="nearest")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=per_prompt, padding=2, pad_value=1.0)
    for i, record in enumerate(chosen):
        print(f"row {i + 1}: {record.prompt}")


if __name__ == "__main__":
    main()
