"""Train the shapes world's tiny models from scratch: tokenizer, policy, CLIP, aesthetic head.

`t2i-gcpo toy build` calls `build_assets`; each stage is a function of its own so tests can run
it with a tiny budget. Stages: the local tokenizer's codebook (k-means on patches of train-split
scenes), the policy (next-token pretraining on train-split scenes, with caption dropout for the
null branch), the CLIP (contrastive, with every category's hard negatives) and the aesthetic
head (clean renders against degraded ones).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from tqdm.auto import tqdm

from t2i_gcpo.files import atomic_path
from t2i_gcpo.toy.models import (
    CLIP_MEAN,
    CLIP_STD,
    janus_policy,
    register_open_clip_configs,
    shapes_clip_config,
    shapes_tokenizer,
)
from t2i_gcpo.toy.scenes import (
    IMAGE_SIZE,
    PATCH,
    TILES,
    box_patches,
    hard_negatives,
    random_scenes,
)
from t2i_gcpo.toy.tokenizer import PatchVQ, fit_codebook

STAGE_STEPS = {"tokenizer": 25, "policy": 1000, "clip": 1500, "aesthetic": 2000}
"""Iterations of each stage at --steps-scale 1 (k-means iterations for the tokenizer)."""
SCENES = {"tokenizer": 4000, "policy": 76800, "clip": 20000, "aesthetic": 4096}
"""Scenes each stage draws at --steps-scale 1 (fewer, at least 256, below 1)."""
CODEBOOK_SIZE = 512
OBJECT_WEIGHT = 8.0
"""How much more an object box's token weighs than a background token in pretraining."""
PRETRAIN_WEIGHTS = (1.0, 1.0, 1.0, 1.5, 1.5, 2.0)
"""How often pretraining draws each category (CATEGORIES' order): the ones that bind words to
colours and places, which a small model learns last, more often."""


def scene_batch(scenes) -> torch.Tensor:
    """(n, 3, H, W) in [0, 1]: the images of some scenes."""
    return torch.stack([scene.image for scene in scenes])


def build_tokenizer(
    n_scenes: int, iterations: int, seed: int = 0, texture: float = 1.0
) -> tuple[PatchVQ, dict]:
    """The local tokenizer: k-means of the patches of train-split scenes into CODEBOOK_SIZE
    entries; returns it and its reconstruction error."""
    scenes = random_scenes(n_scenes, seed + 11, split="train", texture=texture)
    empty = PatchVQ(torch.zeros(1, 3 * PATCH * PATCH), PATCH, IMAGE_SIZE)
    patches = empty.patches(scene_batch(scenes)).reshape(-1, 3 * PATCH * PATCH)
    patches = torch.cat([patches, TILES.flatten(1)])  # every tile has its code
    codebook, mse = fit_codebook(patches, CODEBOOK_SIZE, iterations, seed)
    return PatchVQ(codebook, PATCH, IMAGE_SIZE), {"mse_per_pixel": mse}


@torch.no_grad()
def encode_scenes(policy, scenes, batch_size: int = 512) -> torch.Tensor:
    """scenes -> their image tokens (N, T) long, through the policy's tokenizer."""
    return torch.cat(
        [
            policy.encode(scene_batch(scenes[start : start + batch_size]))
            for start in range(0, len(scenes), batch_size)
        ]
    )


def cosine_schedule(optimizer, steps: int, warmup_share: float = 0.05, floor: float = 0.05):
    """Linear warmup over `warmup_share` of the steps, then cosine decay to `floor` x lr."""
    warmup = max(1, round(steps * warmup_share))

    def factor(step: int) -> float:
        progress = min(step, steps) / max(1, steps)
        return min(1.0, (step + 1) / warmup) * (
            floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def pretrain_policy(
    policy,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    n_scenes: int = 76800,
    texture: float = 1.0,
    caption_dropout: float = 0.1,
    weight_decay: float = 0.1,
    attention_dropout: float = 0.1,
    object_weight: float = OBJECT_WEIGHT,
    flat_share: float = 0.5,
    progress: bool = True,
) -> dict[str, float]:
    """Teach a JanusPolicy to draw the prompts of the "train" split (next-token NLL on its
    tokenizer's codes of drawn scenes).

    A `caption_dropout` share of every batch is scored under the null prompt, so that the
    unconditional branch that classifier-free guidance needs is learnt too. Weight decay and
    attention dropout regularise towards composing what it saw; the dropout is switched off
    again at the end, so that RL scores tokens with the same network that sampled them.

    Two choices make it bind colour words within the build's budget; without them it never
    did. Of an image's 144 tokens one per object says which colour the prompt asked for (the
    rest copy it), so (1) the tokens of object boxes weigh `object_weight` times a background
    token, and (2) the first `flat_share` of the steps draws flat scenes (texture 0) and the rest
    textured ones, since texture noise drowned that one token from the start. Measured on a
    64-wide, 2-layer policy on "colors" scenes with batch 32 (the colour word's effect on an
    image's log-likelihood, correct colour minus the mean of the other five): plain mean, flat,
    1000 steps: 0.05 nats; weight 8, flat, 300 steps: 2.5 nats; weight 8 or 32, texture 1,
    300 steps: none (picking the colour word by likelihood at chance); weight 8, 300 flat then
    300 textured steps: 3.9 nats, and the colour word picked right 39% of the time against 17%
    by chance with texture noise in the sum."""
    n_flat = round(n_scenes * flat_share) if texture > 0 else 0
    scenes = random_scenes(
        n_scenes - n_flat, seed + 1, split="train", texture=texture, weights=PRETRAIN_WEIGHTS
    )
    scenes += random_scenes(n_flat, seed + 2, split="train", texture=0.0, weights=PRETRAIN_WEIGHTS)
    codes = encode_scenes(policy, scenes)
    weights = (
        1.0
        + (object_weight - 1.0)
        * torch.stack([box_patches(scene.objects).flatten() for scene in scenes]).float()
    )
    captions = [scene.prompt for scene in scenes]
    generator = torch.Generator().manual_seed(seed)
    params = policy.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    schedule = cosine_schedule(optimizer, steps)
    set_attention_dropout(policy, attention_dropout)
    n_null = max(1, round(caption_dropout * batch_size)) if caption_dropout > 0 else 0
    textured = len(scenes) - n_flat
    pools = (
        textured + torch.randperm(n_flat, generator=generator),
        torch.randperm(textured, generator=generator),
    )
    flat_steps = round(steps * flat_share) if n_flat else 0
    policy.train()
    bar = tqdm(range(steps), desc="policy pretraining", disable=not progress)
    for step in bar:
        pool = pools[0] if step < flat_steps else pools[1]
        pick = pool[(torch.arange(batch_size) + step * batch_size) % len(pool)].tolist()
        tokens, prompts, weight = codes[pick], [captions[i] for i in pick], weights[pick]
        logp = policy.token_logprobs(prompts[n_null:], tokens[n_null:])
        nll = -logp.mean()
        loss = -(logp * weight[n_null:]).sum()
        if n_null:
            null_logp = policy.token_logprobs(prompts[:n_null], tokens[:n_null], "null")
            loss = loss - (null_logp * weight[:n_null]).sum()
        loss = loss / weight.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        bar.set_postfix(nll=f"{nll.item():.3f}")
    policy.eval()
    set_attention_dropout(policy, 0.0)
    return {"nll": nll.item()}


def set_attention_dropout(policy, rate: float) -> None:
    """Set the attention dropout of the policy's language model (modules and saved config)."""
    language_model = policy.model.model.language_model
    language_model.config.attention_dropout = rate
    policy.model.config.text_config.attention_dropout = rate
    for module in language_model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = rate


def clip_pixels(images: torch.Tensor) -> torch.Tensor:
    """images (N, 3, H, W) in [0, 1] -> the shapes CLIP's normalised input."""
    mean = torch.tensor(CLIP_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def train_clip(
    model,
    tokenizer,
    steps: int,
    batch_size: int = 128,
    negatives_per_scene: int = 3,
    lr: float = 1e-3,
    seed: int = 0,
    n_scenes: int = 20000,
    texture: float = 1.0,
    progress: bool = True,
) -> dict[str, float]:
    """Contrastive training of an open_clip model on scenes and their prompts, with hard
    negatives: each batch scores every image against the batch's prompts plus
    `negatives_per_scene` of its scene's hard negatives (one class, colour, count or relation
    changed, or two objects' colours or places swapped), so that the model must count, bind
    colours to shapes and read relations rather than recognise words."""
    rng = np.random.default_rng(seed)
    scenes = random_scenes(n_scenes, seed + 2, split="any", texture=texture)
    images = clip_pixels(scene_batch(scenes))
    negative_sets = [[n["prompt"] for n in hard_negatives(s.metadata)] for s in scenes]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    model.train()
    bar = tqdm(range(steps), desc="shapes CLIP", disable=not progress)
    for _ in bar:
        pick = torch.randint(len(scenes), (batch_size,), generator=generator).tolist()
        texts = [scenes[i].prompt for i in pick]
        for i in pick:
            options = negative_sets[i]
            chosen = rng.choice(len(options), size=min(negatives_per_scene, len(options)))
            texts += [options[j] for j in chosen]
        image_features = F.normalize(model.encode_image(images[pick]), dim=-1)
        text_features = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
        logits = model.logit_scale.exp() * image_features @ text_features.T
        target = torch.arange(batch_size)
        loss = (
            F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :batch_size].T, target)
        ) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return {"loss": loss.item()}


@torch.no_grad()
def clip_caption_rank_accuracy(model, tokenizer, scenes) -> dict[str, float]:
    """Per category (and "all"), the share of scenes whose prompt scores above every one of
    its hard negatives."""
    hits: dict[str, list[float]] = {}
    for scene in scenes:
        texts = [scene.prompt] + [n["prompt"] for n in hard_negatives(scene.metadata)]
        image = F.normalize(model.encode_image(clip_pixels(scene.image[None])), dim=-1)
        text = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
        scores = (image @ text.T)[0]
        right = float(scores[0] > scores[1:].max())
        hits.setdefault(scene.metadata["tag"], []).append(right)
        hits.setdefault("all", []).append(right)
    return {tag: sum(v) / len(v) for tag, v in hits.items()}


DEGRADATIONS = ("blur", "noise", "color_shift", "broken")


def degrade(scene, kind: str, rng: np.random.Generator) -> torch.Tensor:
    """A degraded copy (3, H, W) of a scene's image: blurred, noisy, colour-shifted or with a
    piece of an object erased."""
    image = scene.image.clone()
    if kind == "blur":
        return TF.gaussian_blur(image[None], kernel_size=5, sigma=float(rng.uniform(0.9, 1.8)))[0]
    if kind == "noise":
        noise = torch.from_numpy(rng.normal(0.0, rng.uniform(0.08, 0.2), image.shape)).float()
        return (image + noise).clamp(0, 1)
    if kind == "color_shift":
        shift = torch.from_numpy(rng.uniform(-0.35, 0.35, (3, 1, 1))).float()
        return (image + shift).clamp(0, 1)
    if kind != "broken":
        raise ValueError(f"kind={kind!r}; expected one of {DEGRADATIONS}")
    ground = TILES[0][:, :1, :1]
    for mask in scene.masks:
        ys, xs = mask.nonzero(as_tuple=True)
        centre = int(rng.integers(len(ys)))
        half = int(rng.integers(3, 5))
        y0, x0 = max(0, int(ys[centre]) - half), max(0, int(xs[centre]) - half)
        image[:, y0 : int(ys[centre]) + half, x0 : int(xs[centre]) + half] = ground
    return image


@torch.no_grad()
def clip_image_embeddings(model, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """images (N, 3, H, W) in [0, 1] -> L2-normalised CLIP image embeddings (N, D)."""
    out = [
        model.encode_image(clip_pixels(images[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return F.normalize(torch.cat(out), dim=-1)


def degraded_pairs(n: int, seed: int, texture: float = 1.0):
    """(clean (n, 3, H, W), degraded (n, 3, H, W)): each scene with one random degradation."""
    rng = np.random.default_rng(seed)
    scenes = random_scenes(n, seed + 3, split="any", texture=texture)
    degraded = [degrade(s, DEGRADATIONS[i % len(DEGRADATIONS)], rng) for i, s in enumerate(scenes)]
    return scene_batch(scenes), torch.stack(degraded)


def train_aesthetic(
    head,
    clip_model,
    steps: int,
    n_scenes: int = 4096,
    lr: float = 3e-3,
    seed: int = 0,
    texture: float = 1.0,
    progress: bool = True,
) -> dict[str, float]:
    """Fit the aesthetic MLP on CLIP embeddings: clean renders score 7, degraded ones 3."""
    clean, degraded = degraded_pairs(n_scenes, seed, texture)
    features = torch.cat(
        [clip_image_embeddings(clip_model, clean), clip_image_embeddings(clip_model, degraded)]
    )
    targets = torch.cat([torch.full((n_scenes,), 7.0), torch.full((n_scenes,), 3.0)])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    head.train()
    bar = tqdm(range(steps), desc="aesthetic head", disable=not progress)
    for _ in bar:
        pick = torch.randint(len(features), (256,), generator=generator)
        loss = F.mse_loss(head(features[pick]), targets[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(mse=f"{loss.item():.3f}")
    head.eval()
    return {"mse": loss.item()}


@torch.no_grad()
def aesthetic_rank_accuracy(head, clip_model, n: int = 512, seed: int = 99) -> float:
    """Share of (clean, degraded) pairs of fresh scenes where the clean render scores higher."""
    clean, degraded = degraded_pairs(n, seed)
    good = head(clip_image_embeddings(clip_model, clean))
    bad = head(clip_image_embeddings(clip_model, degraded))
    return (good > bad).float().mean().item()


def _scaled(table: dict[str, int], stage: str, scale: float, minimum: int) -> int:
    if table is SCENES:
        return max(minimum, round(table[stage] * min(scale, 1.0)))
    return max(minimum, round(table[stage] * scale))


def build_assets(
    out: str | Path,
    seed: int = 0,
    steps_scale: float = 1.0,
    texture: float = 1.0,
    progress: bool = True,
) -> dict:
    """Train every shapes-world asset into `out` (policy/ with its image_tokenizer/, clip/,
    aesthetic.safetensors, build_report.json); returns the report. The folder appears whole or
    not at all. `texture` is the world's background knob (1: textured, 0: flat)."""
    register_open_clip_configs()
    report: dict = {"seed": seed, "steps_scale": steps_scale, "texture": texture, "seconds": {}}
    steps = {s: _scaled(STAGE_STEPS, s, steps_scale, 2) for s in STAGE_STEPS}
    scenes = {s: _scaled(SCENES, s, steps_scale, 256) for s in SCENES}
    report["steps"], report["scenes"] = steps, scenes

    def write(folder: Path) -> None:
        clock = time.perf_counter()
        image_tokenizer, report["tokenizer"] = build_tokenizer(
            scenes["tokenizer"], steps["tokenizer"], seed, texture
        )
        report["seconds"]["tokenizer"] = time.perf_counter() - clock

        clock = time.perf_counter()
        policy = janus_policy("shapes-janus", seed=seed, image_tokenizer=image_tokenizer)
        report["policy"] = pretrain_policy(
            policy,
            steps["policy"],
            seed=seed,
            n_scenes=scenes["policy"],
            texture=texture,
            progress=progress,
        )
        policy.save(folder / "policy")
        report["seconds"]["policy"] = time.perf_counter() - clock

        build_reward_assets(folder, seed, steps, scenes, report, texture, progress)
        report["bytes"] = {p.name: _size(p) for p in sorted(folder.iterdir())}
        (folder / "build_report.json").write_text(json.dumps(report, indent=2))

    with atomic_path(out, folder=True) as staging:
        write(staging)
    return report


def build_reward_assets(
    folder: Path,
    seed: int,
    steps: dict,
    scenes: dict,
    report: dict,
    texture: float = 1.0,
    progress: bool = True,
) -> None:
    """Train the shapes CLIP (folder/clip/) and its aesthetic head (folder/aesthetic.safetensors),
    each stage seeded on its own, so that they do not depend on what trained before them."""
    from open_clip.tokenizer import HFTokenizer
    from safetensors.torch import save_file

    from reward_models.aesthetic_head import AestheticMLP

    register_open_clip_configs()
    clock = time.perf_counter()
    clip_dir = folder / "clip"
    clip_dir.mkdir()
    shapes_tokenizer(append_eos=True).save_pretrained(clip_dir)
    config = {
        "model_cfg": shapes_clip_config(),
        "preprocess_cfg": {
            "mean": list(CLIP_MEAN),
            "std": list(CLIP_STD),
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
    }
    (clip_dir / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed + 1)
    clip_model = open_clip.create_model("shapes-clip")
    tokenizer = HFTokenizer(
        str(clip_dir), context_length=config["model_cfg"]["text_cfg"]["context_length"]
    )
    report["clip"] = train_clip(
        clip_model,
        tokenizer,
        steps["clip"],
        seed=seed,
        n_scenes=scenes["clip"],
        texture=texture,
        progress=progress,
    )
    save_file(clip_model.state_dict(), clip_dir / "open_clip_model.safetensors")
    report["seconds"]["clip"] = time.perf_counter() - clock

    clock = time.perf_counter()
    torch.manual_seed(seed + 2)
    head = AestheticMLP(input_size=config["model_cfg"]["embed_dim"])
    report["aesthetic"] = train_aesthetic(
        head,
        clip_model,
        steps["aesthetic"],
        seed=seed,
        n_scenes=scenes["aesthetic"],
        texture=texture,
        progress=progress,
    )
    save_file(head.state_dict(), folder / "aesthetic.safetensors")
    report["seconds"]["aesthetic"] = time.perf_counter() - clock


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
