"""The shapes world's models: `toy build` end to end on a tiny budget, and the shipped assets
against a fast subset of their quality bars."""

import json

import open_clip
import pytest
import torch
from open_clip.tokenizer import HFTokenizer
from safetensors.torch import load_file

from reward_models import load_reward
from reward_models.aesthetic_head import AestheticMLP
from t2i_gcpo.cli import main
from t2i_gcpo.data.prompts import resolve_prompts
from t2i_gcpo.evaluation import evaluate_policy
from t2i_gcpo.policies import load_policy
from t2i_gcpo.toy.assets import (
    ASSETS_DIR,
    load_shapes_policy,
    shapes_aesthetic_path,
    shapes_clip_path,
)
from t2i_gcpo.toy.build import (
    aesthetic_rank_accuracy,
    clip_caption_rank_accuracy,
    encode_scenes,
)
from t2i_gcpo.toy.oracle import evaluate
from t2i_gcpo.toy.scenes import random_scenes

SHIPPED = (ASSETS_DIR / "policy" / "config.json").exists()
needs_assets = pytest.mark.skipif(not SHIPPED, reason="shapes assets not built in this checkout")


def test_toy_build_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    out = tmp_path / "assets"
    assert main(["toy", "build", "--out", str(out), "--steps-scale", "0.002", "--quiet"]) == 0
    assert "wrote the shapes-world assets" in capsys.readouterr().out
    report = json.loads((out / "build_report.json").read_text())
    assert set(report["seconds"]) == {"vq", "policy", "clip", "aesthetic"}
    assert all(v > 0 for v in report["bytes"].values())
    assert not list(tmp_path.glob(".*partial*"))  # written to a hidden folder, then renamed

    policy = load_shapes_policy(root=out)
    rollout = policy.sample(["a red circle at the top left"], samples_per_prompt=2, cfg_scale=2.0)
    images = policy.decode(rollout.tokens)
    assert images.shape == (2, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert load_policy(str(out / "policy")).grid == (8, 8)
    clip_model = open_clip.create_model(f"local-dir:{out / 'clip'}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out / 'clip'}")
    assert clip_model.encode_text(tokenizer(["a red circle"])).shape == (1, 64)
    head = AestheticMLP(64)
    head.load_state_dict(load_file(out / "aesthetic.safetensors"))


@needs_assets
def test_shipped_policy_loads_by_name_and_its_vq_keeps_the_oracle_right():
    policy = load_policy("shapes")
    assert policy.grid == (8, 8) and policy.image_size == (32, 32)
    scenes = random_scenes(40, seed=5, split="eval")
    recon = policy.decode(
        encode_scenes(policy.model.model.vqmodel, torch.stack([s.image for s in scenes]))
    )
    accuracy = sum(evaluate(r, s.metadata).strict for r, s in zip(recon, scenes, strict=True))
    assert accuracy / len(scenes) >= 0.95


@needs_assets
def test_shipped_policy_draws_held_out_prompts_but_leaves_room_to_improve():
    # the quality bars: one object between 40% and 90%, two objects at most 60%
    # (4 samples per prompt here; benchmarks/shapes_quality.py measures 8)
    policy = load_policy("shapes")
    assert policy.default_cfg_scale == 1.0
    accuracy = evaluate_policy(
        policy,
        resolve_prompts("shapes:eval"),
        samples_per_prompt=4,
        judge=load_reward("shapes-oracle"),
        negative_modes=(),
    )
    assert 0.4 <= accuracy["oracle/single_object"] <= 0.9
    assert accuracy["oracle/two_object"] <= 0.6


@needs_assets
def test_shipped_clip_and_aesthetic_head_rank_the_truth_first():
    clip_dir = shapes_clip_path()
    clip_model = open_clip.create_model(f"local-dir:{clip_dir}").eval()
    tokenizer = HFTokenizer(str(clip_dir), context_length=clip_model.context_length)
    assert clip_caption_rank_accuracy(clip_model, tokenizer, random_scenes(40, 3, "eval")) >= 0.85
    head = AestheticMLP(64)
    head.load_state_dict(load_file(shapes_aesthetic_path()))
    assert aesthetic_rank_accuracy(head.eval(), clip_model, n=128) >= 0.85
