"""Measure the shapes world's quality bars on the shipped (or a given) asset folder.

Prints one table: oracle accuracy on renders, broken renders and VQ reconstructions; the
pretrained policy's strict accuracy per tag; CLIP caption ranking; aesthetic ranking. With
--grid it also writes a PNG of policy samples for a few eval prompts.

    python benchmarks/shapes_quality.py [--assets DIR] [--samples 8] [--grid FILE.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.tokenizer import HFTokenizer
from safetensors.torch import load_file
from torchvision.utils import save_image

from reward_models.aesthetic_head import AestheticMLP
from t2i_gcpo.data.prompts import resolve_prompts
from t2i_gcpo.evaluation import evaluate_policy
from t2i_gcpo.toy.assets import (
    load_shapes_policy,
    shapes_aesthetic_path,
    shapes_clip_path,
)
from t2i_gcpo.toy.build import aesthetic_rank_accuracy, clip_caption_rank_accuracy, encode_scenes
from t2i_gcpo.toy.oracle import evaluate
from t2i_gcpo.toy.rewards import ShapesOracle
from t2i_gcpo.toy.scenes import all_contrastive, random_scenes, render


def oracle_figures(policy, n: int = 200, seed: int = 7) -> dict[str, float]:
    """Oracle strict accuracy on eval-split renders, their broken versions and VQ recons."""
    scenes = random_scenes(n, seed, split="eval")
    truth = sum(evaluate(s.image, s.metadata).strict for s in scenes) / n
    broken, count = 0.0, 0
    for i, scene in enumerate(scenes[:60]):
        for negative in all_contrastive(scene.objects):
            broken += evaluate(render(negative, seed=i).image, scene.metadata).strict
            count += 1
    vq = policy.model.model.vqmodel
    codes = encode_scenes(vq, torch.stack([s.image for s in scenes]))
    recon = policy.decode(codes)
    recon_acc = sum(evaluate(r, s.metadata).strict for r, s in zip(recon, scenes, strict=True)) / n
    return {
        "oracle/renders": truth,
        "oracle/broken_renders": broken / count,
        "oracle/vq_reconstructions": recon_acc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=None, help="asset folder (default: shipped)")
    parser.add_argument("--samples", type=int, default=8, help="policy samples per eval prompt")
    parser.add_argument("--cfg-scale", type=float, default=None, help="default: the policy's")
    parser.add_argument("--grid", default=None, help="write a PNG of policy samples here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    policy = load_shapes_policy(root=args.assets)
    figures = oracle_figures(policy)
    records = resolve_prompts("shapes:eval")
    accuracy = evaluate_policy(
        policy, records, args.samples, args.cfg_scale, judge=ShapesOracle(), negative_modes=()
    )
    figures.update({f"policy/{k.split('/')[1]}": v for k, v in accuracy.items()})
    clip_dir = shapes_clip_path(args.assets)
    clip_model = open_clip.create_model(f"local-dir:{clip_dir}").eval()
    tokenizer = HFTokenizer(str(clip_dir), context_length=clip_model.context_length)
    figures["clip/true_caption_first"] = clip_caption_rank_accuracy(
        clip_model, tokenizer, random_scenes(200, 11, split="eval")
    )
    head = AestheticMLP(clip_model.text_projection.shape[1])
    head.load_state_dict(load_file(shapes_aesthetic_path(args.assets)))
    figures["aesthetic/clean_above_degraded"] = aesthetic_rank_accuracy(head.eval(), clip_model)
    print(f"{'figure':38s} value")
    for key, value in figures.items():
        print(f"{key:38s} {value:.3f}")
    print(f"(measured in {time.perf_counter() - start:.0f} s)")
    if args.grid:
        scale = policy.default_cfg_scale if args.cfg_scale is None else args.cfg_scale
        write_grid(policy, records, args.grid, scale)


def write_grid(policy, records, path: str, cfg_scale: float, per_prompt: int = 6) -> None:
    """One row per eval prompt (the first four single and two-object ones): samples."""
    chosen = [r for r in records if r.metadata["tag"] == "single_object"][:4]
    chosen += [r for r in records if r.metadata["tag"] == "two_object"][:4]
    rollout = policy.sample(
        [r.prompt for r in chosen],
        samples_per_prompt=per_prompt,
        cfg_scale=cfg_scale,
        generator=torch.Generator().manual_seed(0),
    )
    images = F.interpolate(policy.decode(rollout.tokens), scale_factor=4, mode="nearest")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=per_prompt, padding=2, pad_value=1.0)
    for i, record in enumerate(chosen):
        print(f"row {i + 1}: {record.prompt}")


if __name__ == "__main__":
    main()
