"""Train the shapes world's tiny models from scratch: VQ tokenizer, policy, CLIP, aesthetic head.

`t2i-gcpo toy build` calls `build_assets`; each stage is a function of its own so tests can run
it with a tiny step budget.
"""

from __future__ import annotations

import json
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
from t2i_gcpo.toy.scenes import BACKGROUND, all_contrastive, caption, random_scenes


def scene_images(n: int, seed: int, split: str = "any") -> torch.Tensor:
    """(n, 3, H, W) in [0, 1]: rendered scenes."""
    return torch.stack([scene.image for scene in random_scenes(n, seed, split)])


def _vq_forward(vq, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """pixels (B, 3, H, W) in [-1, 1] -> (reconstruction, VQ loss, codes (B*h*w,)).

    Quantises as JanusVQVAE decodes: to L2-normalised codebook rows (its
    `get_codebook_entry` normalises them), matching L2-normalised encoder outputs; the
    gradient passes straight through. (JanusVQVAE.forward decodes from the code ids, which
    would cut the encoder's gradient.) The VQ loss pulls the codebook to the encoder outputs
    with weight 1 and the encoder to the codebook with the config's beta."""
    latent = F.normalize(vq.quant_conv(vq.encoder(pixels)), dim=1)
    flat = latent.permute(0, 2, 3, 1).reshape(-1, vq.quantize.embedding_dim)
    codebook = F.normalize(vq.quantize.embedding.weight, dim=-1)
    codes = (flat.detach() @ codebook.T).argmax(dim=-1)
    chosen = codebook[codes]
    loss = F.mse_loss(chosen, flat.detach()) + vq.quantize.beta * F.mse_loss(flat, chosen.detach())
    straight = (flat + (chosen - flat).detach()).view(
        latent.shape[0], latent.shape[2], latent.shape[3], -1
    )
    return vq.decoder(vq.post_quant_conv(straight.permute(0, 3, 1, 2))), loss, codes


def _reseed_codes(vq, pixels: torch.Tensor, which: torch.Tensor, generator) -> None:
    """Set codebook rows `which` to randomly chosen (normalised) encoder outputs of `pixels`."""
    with torch.no_grad():
        latent = F.normalize(vq.quant_conv(vq.encoder(pixels)), dim=1).permute(0, 2, 3, 1)
        latent = latent.reshape(-1, vq.quantize.embedding_dim)
        pick = torch.randint(len(latent), (which.numel(),), generator=generator)
        vq.quantize.embedding.weight[which] = latent[pick]


def train_vq(
    vq,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    n_scenes: int = 8192,
    progress: bool = True,
) -> dict[str, float]:
    """Train a JanusVQVAE on rendered scenes in place; returns the final losses.

    The codebook is seeded from encoder outputs after a short warm-up, and codes unused for
    100 steps are re-seeded until 80% of training (no dead codes)."""
    generator = torch.Generator().manual_seed(seed)
    images = scene_images(n_scenes, seed) * 2.0 - 1.0
    vq.train()
    vq.requires_grad_(True)
    optimizer = torch.optim.Adam(vq.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 0.05)
    usage = torch.zeros(vq.config.num_embeddings)
    bar = tqdm(range(steps), desc="VQ tokenizer", disable=not progress)
    for step in bar:
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)]
        recon, vq_loss, codes = _vq_forward(vq, batch)
        recon_loss = F.mse_loss(recon, batch)
        optimizer.zero_grad(set_to_none=True)
        (recon_loss + vq_loss).backward()
        optimizer.step()
        schedule.step()
        usage += torch.bincount(codes.detach(), minlength=usage.numel())
        if step == min(50, steps // 4):
            _reseed_codes(vq, batch, torch.arange(usage.numel()), generator)
            usage.zero_()
        elif (step + 1) % 100 == 0 and step + 1 < steps * 0.8:
            _reseed_codes(vq, batch, (usage == 0).nonzero().flatten(), generator)
            usage.zero_()
        bar.set_postfix(recon=f"{recon_loss.item():.4f}")
    with torch.no_grad():  # unit rows: encode's nearest code is then the normalised one
        vq.quantize.embedding.weight.copy_(F.normalize(vq.quantize.embedding.weight, dim=-1))
    vq.eval()
    vq.requires_grad_(False)
    return {"recon_mse": recon_loss.item(), "vq_loss": vq_loss.item()}


@torch.no_grad()
def encode_scenes(vq, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """images (N, 3, H, W) in [0, 1] -> VQ codes (N, h*w) long, in raster order."""
    codes = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size] * 2.0 - 1.0
        codes.append(vq.encode(batch).image_tokens.view(len(batch), -1))
    return torch.cat(codes)


def pretrain_policy(
    policy,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    n_scenes: int = 16384,
    caption_dropout: float = 0.1,
    weight_decay: float = 0.1,
    attention_dropout: float = 0.1,
    progress: bool = True,
) -> dict[str, float]:
    """Teach a JanusPolicy to draw captions of the "train" split (next-token NLL on VQ codes).

    A `caption_dropout` share of every batch is scored under the null prompt, so that the
    unconditional branch that classifier-free guidance needs is learnt too. Weight decay and
    attention dropout regularise towards compositions: with them the policy draws held-out
    colour-shape-position triples far more often (single objects 38% -> 63-70% in one
    measurement). The dropout is switched off again at the end, so that RL fine-tuning scores
    tokens with the same network that sampled them."""
    scenes = random_scenes(n_scenes, seed + 1, split="train")
    codes = encode_scenes(policy.model.model.vqmodel, torch.stack([s.image for s in scenes]))
    captions = [s.caption for s in scenes]
    generator = torch.Generator().manual_seed(seed)
    params = policy.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    set_attention_dropout(policy, attention_dropout)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / warmup)
            * (
                0.05
                + 0.95
                * 0.5
                * (1 + torch.cos(torch.tensor(torch.pi * min(s, steps) / steps)).item())
            )
        ),
    )
    n_null = max(1, round(caption_dropout * batch_size)) if caption_dropout > 0 else 0
    policy.train()
    bar = tqdm(range(steps), desc="policy pretraining", disable=not progress)
    for _ in bar:
        pick = torch.randint(len(codes), (batch_size,), generator=generator).tolist()
        tokens = codes[pick]
        prompts = [captions[i] for i in pick]
        logp = policy.token_logprobs(prompts[n_null:], tokens[n_null:])
        nll = -logp.mean()
        loss = nll * (batch_size - n_null) / batch_size
        if n_null:
            null_logp = policy.token_logprobs(prompts[:n_null], tokens[:n_null], "null")
            loss = loss - null_logp.mean() * n_null / batch_size
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
    n_scenes: int = 16384,
    progress: bool = True,
) -> dict[str, float]:
    """Contrastive training of an open_clip model on scenes and captions, with hard negatives.

    Each batch scores every image against the batch's captions plus `negatives_per_scene`
    hard negatives per scene (one attribute or position changed), so the model must bind
    colours to shapes and places rather than recognise words."""
    rng = np.random.default_rng(seed)
    scenes = random_scenes(n_scenes, seed + 2, split="any")
    images = clip_pixels(torch.stack([s.image for s in scenes]))
    negative_sets = [all_contrastive(s.objects) for s in scenes]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    model.train()
    bar = tqdm(range(steps), desc="shapes CLIP", disable=not progress)
    for _ in bar:
        pick = torch.randint(len(scenes), (batch_size,), generator=generator).tolist()
        texts = [scenes[i].caption for i in pick]
        for i in pick:
            options = negative_sets[i]
            chosen = rng.choice(len(options), size=negatives_per_scene, replace=False)
            texts += [caption(options[j]) for j in chosen]
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
def clip_caption_rank_accuracy(model, tokenizer, scenes) -> float:
    """Share of scenes whose true caption scores above every one of its hard negatives."""
    hits = 0
    for scene in scenes:
        texts = [scene.caption] + [caption(n) for n in all_contrastive(scene.objects)]
        image = F.normalize(model.encode_image(clip_pixels(scene.image[None])), dim=-1)
        text = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
        scores = (image @ text.T)[0]
        hits += int(scores[0] > scores[1:].max())
    return hits / len(scenes)


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
    background = torch.tensor(BACKGROUND, dtype=torch.float32).view(3, 1) / 255.0
    for mask in scene.masks:
        ys, xs = mask.nonzero(as_tuple=True)
        centre = int(rng.integers(len(ys)))
        half = int(rng.integers(2, 4))
        box = torch.zeros_like(mask)
        box[
            max(0, ys[centre] - half) : ys[centre] + half,
            max(0, xs[centre] - half) : xs[centre] + half,
        ] = True
        image[:, box] = background.expand(3, int(box.sum()))
    return image


@torch.no_grad()
def clip_image_embeddings(model, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """images (N, 3, H, W) in [0, 1] -> L2-normalised CLIP image embeddings (N, D)."""
    out = [
        model.encode_image(clip_pixels(images[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return F.normalize(torch.cat(out), dim=-1)


def degraded_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean (n, 3, H, W), degraded (n, 3, H, W)): each scene with one random degradation."""
    rng = np.random.default_rng(seed)
    scenes = random_scenes(n, seed + 3, split="any")
    degraded = [degrade(s, DEGRADATIONS[i % len(DEGRADATIONS)], rng) for i, s in enumerate(scenes)]
    return torch.stack([s.image for s in scenes]), torch.stack(degraded)


def train_aesthetic(
    head,
    clip_model,
    steps: int,
    n_scenes: int = 4096,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Fit the aesthetic MLP on CLIP embeddings: clean renders score 7, degraded ones 3."""
    clean, degraded = degraded_pairs(n_scenes, seed)
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


STAGE_STEPS = {"vq": 800, "policy": 1500, "clip": 500, "aesthetic": 2000}
"""Optimizer steps of each stage at --steps-scale 1."""
SCENES = {"vq": 8192, "policy": 16384, "clip": 16384, "aesthetic": 4096}
"""Training scenes of each stage at --steps-scale 1 (fewer, at least 256, below 1)."""


def _scaled(table: dict[str, int], stage: str, scale: float, minimum: int) -> int:
    return max(
        minimum, round(table[stage] * min(scale, 1.0) if table is SCENES else table[stage] * scale)
    )


def build_assets(
    out: str | Path, seed: int = 0, steps_scale: float = 1.0, progress: bool = True
) -> dict:
    """Train every shapes-world asset into `out` (policy/, clip/, aesthetic.safetensors,
    build_report.json); returns the report. The folder appears whole or not at all."""
    register_open_clip_configs()
    report: dict = {"seed": seed, "steps_scale": steps_scale, "seconds": {}}
    steps = {s: _scaled(STAGE_STEPS, s, steps_scale, 2) for s in STAGE_STEPS}
    scenes = {s: _scaled(SCENES, s, steps_scale, 256) for s in SCENES}
    report["steps"] = steps

    def write(folder: Path) -> None:
        clock = time.perf_counter()
        policy = janus_policy("shapes-janus", seed=seed)
        report["vq"] = train_vq(
            policy.model.model.vqmodel,
            steps["vq"],
            seed=seed,
            n_scenes=scenes["vq"],
            progress=progress,
        )
        report["seconds"]["vq"] = time.perf_counter() - clock

        clock = time.perf_counter()
        report["policy"] = pretrain_policy(
            policy, steps["policy"], seed=seed, n_scenes=scenes["policy"], progress=progress
        )
        policy.save(folder / "policy")
        report["seconds"]["policy"] = time.perf_counter() - clock

        build_reward_assets(folder, seed, steps, scenes, report, progress)
        report["bytes"] = {p.name: _size(p) for p in sorted(folder.iterdir())}
        (folder / "build_report.json").write_text(json.dumps(report, indent=2))

    with atomic_path(out, folder=True) as staging:
        write(staging)
    return report


def build_reward_assets(
    folder: Path, seed: int, steps: dict, scenes: dict, report: dict, progress: bool = True
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
        progress=progress,
    )
    save_file(head.state_dict(), folder / "aesthetic.safetensors")
    report["seconds"]["aesthetic"] = time.perf_counter() - clock


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
