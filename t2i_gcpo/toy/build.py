"""Train the shapes world's tiny models from scratch: tokenizer, policy, CLIP, aesthetic head.

`t2i-gcpo toy build` calls `build_assets`; each stage is a function of its own so tests can run
it with a tiny budget. Stages: the local tokenizer's codebook (k-means on patches of train-split
scenes), the policy (next-token pretraining on train-split scenes, with caption dropout for the
null branch), the CLIP (contrastive, with every category's hard negatives) and the aesthetic
head (clean renders against degraded ones).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from tqdm.auto import tqdm

from t2i_gcpo.files import atomic_path
from t2i_gcpo.policies.janus import gather_logprobs
from t2i_gcpo.toy import scenes as scenes_module
from t2i_gcpo.toy.models import (
    CLIP_MEAN,
    CLIP_STD,
    janus_policy,
    new_shapes_clip,
    register_open_clip_configs,
    shapes_clip_config,
    shapes_tokenizer,
)
from t2i_gcpo.toy.scenes import (
    COLORS,
    IMAGE_SIZE,
    PATCH,
    SHAPES,
    TILES,
    box_patches,
    coverage,
    first_patches,
    hard_negative_changes,
    hard_negatives,
    random_scenes,
    sample_scene,
)
from t2i_gcpo.toy.tokenizer import PatchVQ, fit_codebook

STAGE_STEPS = {"tokenizer": 25, "policy": 2500, "clip": 2250, "aesthetic": 2000}
"""Iterations of each stage at --steps-scale 1 (k-means iterations for the tokenizer). The
policy's 2500 (1500 until 2026-12-07) bring both shapes of a held-out pair and the held-out
colours (docs/results.md, section 4, variants AM and AQ) at about 1.7 times the stage's time."""
SCENES = {"tokenizer": 4000, "policy": 76800, "clip": 20000, "aesthetic": 16384}
"""Scenes each stage draws at --steps-scale 1 (fewer, at least 256, below 1)."""
CODEBOOK_SIZE = 512
OBJECT_WEIGHT = 8.0
"""How much more an object box's token weighs than a background token in pretraining. It also
raises the probability of starting an object on the ground, so the policy draws extra objects;
the ways of weighing that were measured are in `pretrain_policy` ("Extra objects")."""
START_SPANS = ("token", "row", "lead")
"""What `object_weights` can weigh apart as each object box's start."""
START_SPAN = "lead"
START_WEIGHT = 1.0
"""The build's start span and its weight: each box's ground tokens up to its object's first
coloured one weigh 1, and there whether an object starts (see `object_weights`). Against the
start left at OBJECT_WEIGHT, it takes most of the extra objects away and brings the blame AUROC
over 0.90 on every seed measured (docs/results.md, section 4, "Extra objects")."""
ATTENTION_DROPOUT = 0.0
"""Pretraining's attention dropout: off since 2026-12-06. With it, PyTorch's CPU attention
leaves its fused kernel and the policy stage takes 28% longer (1504 s against 1082 s for 1500
steps), for no figure that it improved in the runs measured (docs/results.md, section 4)."""
COLOUR_WEIGHT = 0.2
"""Weight of pretraining's colour term (see `colour_term`) against the mean token NLL. At 1 it
binds colour words but the policy loses the class words (see `pretrain_policy`); at 0.2 on the
shipped split it brought the held-out colours back (colors 1.6 -> 28.9%, docs/results.md,
section 4, "Held-out pairs")."""
CLIP_WEIGHTS = (1.0, 1.0, 1.5, 1.0, 3.0, 2.0)
"""How often the CLIP's training draws each category (CATEGORIES' order): relations, which it
learns last, three times as often, and two objects' colours twice. Measured (the reward stage,
seed 1, 600 eval-split scenes; position / color_attr; docs/results/clip_variants.txt): 1500
steps with color_attr drawn 1x, 88.8 / 93.1%; 2250 steps (the build's), color_attr 1x, 98.9 /
64.4%; position 2x and color_attr 2x, 82.0 / 100%; these weights, 96.6 / 100%."""
DEGRADED_PER_STEP = 0
"""How many scenes of each CLIP batch have a degraded copy that must score below them: 0, off, in
the shipped build. Measured (the build's reward stage alone, 1 thread; prompt above all hard
negatives on 600 eval-split scenes; aesthetic head's clean above degraded; seed 0): at 16 the head
ranks 99.2% right (86.3% without) but the CLIP loses color_attr 98.9 -> 88.5% and position
30.3 -> 20.2% (counting 94.8%); at 8, 98.6% but color_attr 74.7%, counting 81.0%, position
18.0%; at 32 (a test run) 98.4% with color_attr 86.2%. Those runs predate the CLIP's sine-cosine
start (`new_shapes_clip`); with it (seed 1), 4 and 16 leave every caption category near chance
(position 3.4 / 15.7%) while the head ranks 98.2 / 99.2% right."""
MINED_NEGATIVES = 0
"""How many of each scene's `negatives_per_scene` hard negatives in a CLIP batch are its hardest
(those the model scores highest with its image at that step) rather than drawn at random: 0,
off, in the shipped build. Measured (benchmarks/clip_variants.py, reward stage seeds 0 / 1, 600
eval-split scenes; docs/results/clip_variants.txt): at 2, counting 93.1 / 91.4% (shipped recipe
93.1 / 89.7) but position 24.7 / 20.2% (30.3 / 53.9) and the aesthetic head 85.4 / 83.2% (86.3 /
90.6); its CLIP stage took 1203-1237 s on one thread against 1042-1047 s for CLIP_PAIRS' runs,
whose steps cost what the shipped recipe's do."""
CLIP_PAIRS = 0
"""How many of each CLIP batch's scenes (of 128) are drawn for a hard negative of another scene
in the batch (see `partner_scenes`), so that both images and both prompts of a pair that differs
in one thing meet in the batch's contrast: 0, off, in the shipped build. Measured as
MINED_NEGATIVES: at 64, color_attr 100 / 98.9% (98.9 / 94.3) but position 13.5 / 19.1% (its
relations at chance) and the aesthetic head 82.0 / 86.3%."""
WRONG_PREFIX_SHARE = 0.5
"""Share of pretraining scenes whose teacher-forced input shows one object drawn wrong (see
`wrong_object_image`), with the right scene as the target. Measured (the policy stage alone,
seed 0, 1 thread; benchmarks/shapes_quality.py, 8 samples of each held-out prompt; held-out
GenEval / colors / position / color_attr, then object AUROC with attribute negatives and blame
AUROC with the null one): 0 (the previous build) 26.2 / 9.4 / 7.0 / 0.0%, 0.195, 0.491; 0.25
27.0 / 5.5 / 13.3 / 0.0%, 0.667, 0.780; 0.5 35.0 / 44.5 / 20.3 / 4.7%, 0.696, 0.839; 0.75
28.9 / 21.9 / 9.4 / 4.7%, 0.727, 0.860; 1 30.1 / 38.3 / 3.9 / 4.7%, 0.760, 0.871. The credit
rises with the share; the GenEval score is best at 0.5 and noisy across shares. On the shipped
recipe (the "unnamed_colors" split, 2500 steps, 2 threads), share 1 against 0.5 on seeds 0 / 1:
object AUROC 0.724 / 0.731 against 0.689 / 0.698, GenEval 54.7 / 39.8 against 47.4 / 48.7%
(docs/results/policy_variants.txt, AS and AT against AQ and AR)."""
PRETRAIN_WEIGHTS = (1.0, 1.0, 1.0, 1.5, 1.5, 2.0)
"""How often pretraining draws each category (CATEGORIES' order): the ones that bind words to
colours and places, which a small model learns last, more often. Measured against (0.5, 1, 1,
1.5, 1.5, 3) (benchmarks/policy_stage.py, seed 0, 1 thread; held-out GenEval / single_object /
color_attr): 27.0 / 85.2 / 3.1% at WRONG_PREFIX_SHARE 0.5 (these weights: 35.0 / 91.4 / 4.7%);
at share 0.75, 21.7 / 82.8 / 1.6% (blame AUROC 0.902 with the null negative), with the colour
term at 0.1 29.3 / 87.5 / 3.1%, at 0.2 32.6 / 90.6 / 6.2%, at 0.5 28.5 / 68.0 / 4.7%; share 0.75
on seed 1, 21.4 / 65.6 / 2.3% (blame AUROC 0.782). None ships (docs/results.md, section 4)."""


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


def code_colours(image_tokenizer: PatchVQ, min_chroma: float = 0.05) -> torch.Tensor:
    """(K,) long: which of COLORS each code of the tokenizer draws (its index), -1 for ground.

    Objects are drawn in six saturated colours over grey tiles, and an antialiased edge pixel
    blends one of them with grey, so a pixel's chroma (its RGB less their mean) points along its
    object colour's chroma however little of the pixel the object covers. A code's colour is the
    one closest in direction to the chroma of its most saturated pixel; a code whose pixels all
    have chroma below `min_chroma` is ground."""
    pixels = image_tokenizer.codebook.view(-1, 3, image_tokenizer.patch_size**2).transpose(1, 2)
    chroma = pixels - pixels.mean(-1, keepdim=True)
    strength = chroma.norm(dim=-1)
    strongest = chroma[torch.arange(len(chroma)), strength.argmax(1)]
    palette = torch.tensor(list(COLORS.values()), dtype=torch.float32) / 255.0
    palette = F.normalize(palette - palette.mean(-1, keepdim=True), dim=-1)
    colours = (F.normalize(strongest, dim=-1) @ palette.T).argmax(1)
    return colours.masked_fill(strength.amax(1) < min_chroma, -1)


def colour_term(
    logits: torch.Tensor, tokens: torch.Tensor, colours: torch.Tensor, where: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy, over the positions `where` (N, T) bool, of the colour the token at
    each drew, among the six: each colour's logit is the logsumexp of its codes' logits
    (logits (N, T, K), tokens (N, T), colours (K,) from `code_colours`; `where` must only pick
    tokens that have a colour). 0 where nothing is picked.

    Pretraining adds it because the token NLL alone never taught the policy to read a colour
    word. An object's colour is chosen at its first token (the rest copy it), where the object's
    start is itself unlikely; the NLL's gradient against a wrong colour's codes is their
    probability, tiny while the start is unlikely, so the colour word's effect on an image
    stayed near 0 nats. Among its object's colours alone the choice gets a full gradient."""
    if not where.any():
        return logits.new_zeros(())
    picked = logits[where].float()  # (M, K)
    members = torch.stack([colours == c for c in range(len(COLORS))])  # (C, K)
    pooled = picked[:, None, :].masked_fill(~members, float("-inf")).logsumexp(-1)  # (M, C)
    return F.cross_entropy(pooled, colours[tokens[where]])


def wrong_object_image(scene, rng: np.random.Generator) -> torch.Tensor | None:
    """scene.image with one of its objects drawn again in the same box as something its prompt
    rules out: another class, or another colour where the prompt names that object's colour.
    None for a scene without objects. Only the patches of that object's box change (the ground
    there is flat; see `draw`)."""
    if not scene.objects:
        return None
    obj = scene.objects[rng.integers(len(scene.objects))]
    named = {(r["class"], r.get("color")) for r in scene.metadata["include"]}
    if (obj.shape, obj.color) in named and rng.random() < 0.5:
        change = {"color": str(rng.choice([c for c in COLORS if c != obj.color]))}
    else:
        change = {"shape": str(rng.choice([s for s in SHAPES if s != obj.shape]))}
    wrong = dataclasses.replace(obj, **change)
    cover = torch.from_numpy(coverage(wrong.shape, wrong.x, wrong.y, wrong.size)).float()
    colour = torch.tensor(COLORS[wrong.color], dtype=torch.float32).view(3, 1, 1) / 255.0
    redrawn = TILES[0][:, :1, :1] * (1 - cover) + colour * cover
    inside = box_patches([obj]).repeat_interleave(PATCH, 0).repeat_interleave(PATCH, 1)
    image = scene.image.clone()
    image[:, inside] = redrawn[:, inside]
    return image.clamp(0, 1)


@torch.no_grad()
def encode_images(policy, images, batch_size: int = 512) -> torch.Tensor:
    """images (a sequence of (3, H, W) in [0, 1]) -> their image tokens (N, T) long, through the
    policy's tokenizer, `batch_size` at a time."""
    return torch.cat(
        [
            policy.encode(torch.stack(list(images[start : start + batch_size])))
            for start in range(0, len(images), batch_size)
        ]
    )


def encode_scenes(policy, scenes, batch_size: int = 512) -> torch.Tensor:
    """scenes -> their image tokens (N, T) long, through the policy's tokenizer."""
    return encode_images(policy, [scene.image for scene in scenes], batch_size)


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
    attention_dropout: float = ATTENTION_DROPOUT,
    object_weight: float = OBJECT_WEIGHT,
    start_weight: float | None = START_WEIGHT,
    start_span: str = START_SPAN,
    choice_only: bool = False,
    flat_share: float = 0.5,
    colour_weight: float = COLOUR_WEIGHT,
    wrong_prefix_share: float = WRONG_PREFIX_SHARE,
    category_weights: Sequence[float] = PRETRAIN_WEIGHTS,
    progress: bool = True,
) -> dict[str, float]:
    """Teach a JanusPolicy to draw the prompts of the "train" split (next-token NLL on its
    tokenizer's codes of drawn scenes).

    A `caption_dropout` share of every batch is scored under the null prompt, so that the
    unconditional branch that classifier-free guidance needs is learnt too. Weight decay and
    attention dropout (off by default: ATTENTION_DROPOUT) regularise towards composing what it
    saw; the dropout is switched off again at the end, so that RL scores tokens with the same
    network that sampled them.

    Colour words: (1) the tokens of object boxes weigh `object_weight` times a background
    token and (2) the first `flat_share` of the steps draws flat scenes (texture 0), the rest
    textured ones. That alone never taught the policy to read a colour word; (3)
    `colour_weight` times `colour_term` at the first token of every object whose colour the
    prompt names does, but at weight 1 it costs the class words. Measured at this policy's size
    (the colour or class word's effect on an image's log-likelihood, correct word minus the
    mean of the others, 48 textured train-split "colors" scenes; held-out GenEval on 4 samples
    of the 96 eval prompts; before wrong prefixes): (1)-(2), 1000 steps: colour 0.03 nats,
    class 7.0 nats, GenEval 24.7%; (3) at every object token, 500 steps: colour 0.2 nats; (3)
    at first tokens, 500 steps: colour 15.3 nats; the full build with (3) at weight 1: colour
    13.5 nats, class 0.2 nats, GenEval 17.7% (colors 10.9%, single_object 50%). With wrong
    prefixes the words are read without it on the "pairs" split (HELD_OUT_RULES), but not on
    the shipped one, where COLOUR_WEIGHT 0.2 brings them back.

    Wrong prefixes: for a `wrong_prefix_share` of the scenes (drawn once, before training), the
    teacher-forced input shows one object redrawn as something the prompt rules out (another
    class, or another colour where the prompt names it), while the target stays the right
    scene. On clean prefixes alone the policy learns to continue an object from its first
    tokens and stops reading the prompt after them; with these, the rest of the object can only
    be predicted from the prompt, so its words get a gradient at every object token instead of
    one. The null rows keep clean inputs (without a prompt nothing says what is wrong). See
    WRONG_PREFIX_SHARE for what it measured.

    Extra objects: weighing a token raises what the policy predicts wherever the context looks
    the same, and nothing before an object says that it starts, so (1) raises the probability
    of starting an object everywhere: the policy draws several where the prompt asks for one.
    `start_weight` weighs each box's start (`start_span`: its first token, its first row, or its
    tokens up to its object's first coloured one) apart (see `object_weights`); `choice_only`
    weighs every token 1 and only which object code a token is (`object_choice_logprobs`)
    `object_weight`. Measured in docs/results.md, section 4 ("Extra objects").

    `category_weights`: how often each category is drawn (see PRETRAIN_WEIGHTS)."""
    n_flat = round(n_scenes * flat_share) if texture > 0 else 0
    scenes = random_scenes(
        n_scenes - n_flat, seed + 1, split="train", texture=texture, weights=category_weights
    )
    scenes += random_scenes(n_flat, seed + 2, split="train", texture=0.0, weights=category_weights)
    codes = encode_scenes(policy, scenes)
    colours = code_colours(policy.image_tokenizer)
    object_codes = colours >= 0
    drawn = object_codes[codes]
    weights, starts = object_weights(scenes, object_weight, start_weight, start_span, drawn)
    starts &= drawn  # box starts whose choice is split: which object, at full weight
    if choice_only:  # every token weighs 1; which object code a token is weighs object_weight
        weights, starts = torch.ones_like(weights), drawn
    if colour_weight:  # where the colour term applies: first tokens of objects named a colour
        named = [any("color" in req for req in s.metadata["include"]) for s in scenes]
        choices = torch.stack([first_patches(scene.masks).flatten() for scene in scenes])
        choices &= torch.tensor(named)[:, None] & drawn
    inputs = codes
    if wrong_prefix_share > 0:  # the teacher-forced input of some scenes: one object wrong
        rng = np.random.default_rng(seed + 3)
        picked = np.flatnonzero(rng.random(len(scenes)) < wrong_prefix_share)
        wrong = [(i, wrong_object_image(scenes[i], rng)) for i in picked]
        wrong = [(i, image) for i, image in wrong if image is not None]
        if wrong:
            inputs = codes.clone()
            index = torch.tensor([i for i, _ in wrong])
            inputs[index] = encode_images(policy, [image for _, image in wrong])
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
    colour = torch.zeros(())
    bar = tqdm(range(steps), desc="policy pretraining", disable=not progress)
    for step in bar:
        pool = pools[0] if step < flat_steps else pools[1]
        pick = pool[(torch.arange(batch_size) + step * batch_size) % len(pool)].tolist()
        tokens, prompts, weight = codes[pick], [captions[i] for i in pick], weights[pick]
        logits = policy.token_logits(prompts[n_null:], inputs[pick][n_null:])
        logp = gather_logprobs(logits, tokens[n_null:])
        nll = -logp.mean()
        loss = -(logp * weight[n_null:]).sum()
        if n_null:
            null_logp = policy.token_logprobs(prompts[:n_null], tokens[:n_null], "null")
            loss = loss - (null_logp * weight[:n_null]).sum()
        total = weight.sum()
        if choice_only or (start_weight is not None and start_weight != object_weight):
            # at a token drawn in an object's code: whether it is an object code weighs as
            # above, which object code it is object_weight
            where = starts[pick][n_null:]
            within = object_choice_logprobs(logits[where], tokens[n_null:][where], object_codes)
            extra = object_weight - (1.0 if choice_only else start_weight)
            loss = loss - extra * within.sum()
            if choice_only:
                total = total + extra * where.sum()
        loss = loss / total
        if colour_weight:
            where = choices[pick][n_null:]
            colour = colour_term(logits, tokens[n_null:], colours, where)
            loss = loss + colour_weight * colour
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        bar.set_postfix(nll=f"{nll.item():.3f}")
    policy.eval()
    set_attention_dropout(policy, 0.0)
    return {
        "nll": nll.item(),
        "colour_term": colour.item(),
        "wrong_prefix_share": wrong_prefix_share,
    }


def object_weights(
    scenes,
    object_weight: float,
    start_weight: float | None = None,
    start_span: str = "token",
    drawn: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pretraining's token weights (N, T) and each object box's start (N, T) bool.

    The tokens of every object's box weigh `object_weight`, the rest 1. With `start_weight`,
    each box's start weighs that instead: nothing before it says that an object starts there,
    so a weight above 1 there raises the probability of starting an object everywhere the
    context looks alike, and the policy draws extra objects. A box's start (`start_span`) is

    - "token": its first token in raster order (its top-left patch; boxes never overlap);
    - "row": its whole first row (boxes lie at least a tile apart, so the token above it is
      ground), where the ground tiles before an object's first coloured token look like the
      textured ground's flat tile;
    - "lead": its tokens up to and including the first one drawn in an object's code (`drawn`,
      (N, T) bool, needed here), in raster order: where the context cannot yet tell the object
      from the ground, and no further."""
    if start_span not in START_SPANS:
        raise ValueError(f"start_span must be one of {START_SPANS}, got {start_span!r}")
    boxes = torch.stack([box_patches(scene.objects) for scene in scenes])  # (N, GRID, GRID)
    weights = 1.0 + (object_weight - 1.0) * boxes.flatten(1).float()
    if start_span == "lead":
        if drawn is None:
            raise ValueError("start_span='lead' needs `drawn`, the tokens drawn in object codes")
        owner = [i for i, scene in enumerate(scenes) for _ in scene.objects]
        each = [box_patches([obj]).flatten() for scene in scenes for obj in scene.objects]
        starts = torch.zeros(weights.shape, dtype=torch.long)
        if each:
            own = torch.stack(each)  # (objects, T): each object's own box
            hits = (own & drawn[owner]).long()
            lead = own & (hits.cumsum(1) - hits == 0)  # no drawn token of the box before it
            starts.index_add_(0, torch.tensor(owner), lead.long())
        starts = starts > 0
    else:
        starts = boxes & ~F.pad(boxes, (0, 0, 1, 0))[:, :-1]  # first rows: no box above them
        if start_span == "token":  # first tokens: no box to their left either
            starts &= ~F.pad(starts, (1, 0))[:, :, :-1]
        starts = starts.flatten(1)
    if start_weight is not None:
        weights[starts] = start_weight
    return weights, starts


def object_choice_logprobs(
    logits: torch.Tensor, tokens: torch.Tensor, object_codes: torch.Tensor
) -> torch.Tensor:
    """logits (M, K), tokens (M,) that are object codes, object_codes (K,) bool -> (M,) the
    log-probability of each token among the object codes alone, log p(y) - log p(any object
    code). The NLL of an object's first token is -log p(any object code) (that an object starts
    there) plus minus this (which one it is), so the two can be weighed apart."""
    logp = logits.float().log_softmax(-1)
    return logp.gather(-1, tokens[:, None])[:, 0] - logp[:, object_codes].logsumexp(-1)


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


def partner_scenes(scenes, rng: np.random.Generator, texture: float = 1.0) -> list:
    """For each scene, a scene drawn for one of its hard negatives (`hard_negative_changes`): a
    kind of change uniformly among those its record allows, then one of that kind's records; its
    own layout and background."""
    partners = []
    for scene in scenes:
        by_kind: dict[str, list[dict]] = {}
        for kind, record in hard_negative_changes(scene.metadata):
            by_kind.setdefault(kind, []).append(record)
        records = by_kind[list(by_kind)[rng.integers(len(by_kind))]]
        partners.append(sample_scene(records[rng.integers(len(records))], rng, texture))
    return partners


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
    hard_weight: float = 1.0,
    degraded_per_step: int = DEGRADED_PER_STEP,
    pairs_per_step: int = CLIP_PAIRS,
    mined_negatives: int = MINED_NEGATIVES,
    weights: Sequence[float] = CLIP_WEIGHTS,
    progress: bool = True,
) -> dict[str, float]:
    """Contrastive training of an open_clip model on scenes and their prompts, with hard
    negatives (one class, colour, count or relation changed, or two objects' colours or places
    swapped), so that the model must count, bind colours to shapes and read relations rather
    than recognise words. Each image is scored against the batch's prompts plus
    `negatives_per_scene` hard negatives of every scene in it, and, weighted `hard_weight`,
    against its own prompt and its own hard negatives alone. Measured on position prompts (the
    prompt above all its hard negatives, 89 eval-split scenes): without that second term and
    with every category drawn equally, 19%; with it and CLIP_WEIGHTS, 36%.

    Images can also be worse than their prompts say: for the first `degraded_per_step` scenes
    of a batch, a degraded copy (`degrade`: blurred, noisy, colour-shifted or an object broken)
    must score below the clean image with their prompt. Without it the embedding, trained only
    to match captions, says little about blur or noise; with it the CLIP's capacity goes to
    quality at the cost of attributes and relations (see DEGRADED_PER_STEP).

    With `pairs_per_step` P, the last P scenes of each batch are the partners (`partner_scenes`)
    of its first P: a scene and its partner differ in one thing their prompts name, so each
    prompt must pick its own image over one that is right in all but that (a hard negative on
    the image side, which the text-side negatives do not give).

    With `mined_negatives` M, M of each scene's k negatives are the ones the model confuses
    most with its prompt at that step (scored without gradient), the other k - M at random.
    `weights`: how often each category's scenes are drawn (CATEGORIES' order)."""
    if not 0 <= mined_negatives <= negatives_per_scene:
        raise ValueError(
            f"mined_negatives={mined_negatives} must lie in [0, negatives_per_scene] "
            f"= [0, {negatives_per_scene}]"
        )
    if not 0 <= pairs_per_step <= batch_size // 2:
        raise ValueError(f"pairs_per_step={pairs_per_step} must lie in [0, batch_size / 2]")
    rng = np.random.default_rng(seed)
    scenes = random_scenes(n_scenes, seed + 2, split="any", texture=texture, weights=weights)
    if pairs_per_step:  # partner i of scene i, at index n_scenes + i
        scenes = scenes + partner_scenes(scenes, np.random.default_rng(seed + 7), texture)
    images = clip_pixels(scene_batch(scenes))
    n_worse, degraded = min(degraded_per_step, batch_size), None
    worse_term = torch.zeros(())
    if n_worse:
        degraded = clip_pixels(degraded_copies(scenes, np.random.default_rng(seed + 5)))
    negative_sets = [[n["prompt"] for n in hard_negatives(s.metadata)] for s in scenes]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    k = negatives_per_scene
    model.train()
    bar = tqdm(range(steps), desc="shapes CLIP", disable=not progress)
    for _ in bar:
        pick = torch.randint(n_scenes, (batch_size,), generator=generator).tolist()
        if pairs_per_step:
            partners = [n_scenes + i for i in pick[:pairs_per_step]]
            pick = pick[: batch_size - pairs_per_step] + partners
        texts = [scenes[i].prompt for i in pick]
        batch = images[pick]
        if n_worse:
            batch = torch.cat([batch, degraded[pick[:n_worse]]])
        features = F.normalize(model.encode_image(batch), dim=-1)
        image_features, worse_features = features[:batch_size], features[batch_size:]
        if mined_negatives:
            texts += mine_negatives(
                model, tokenizer, image_features.detach(), [negative_sets[i] for i in pick],
                k, mined_negatives, rng,
            )  # fmt: skip
        else:
            for i in pick:
                options = negative_sets[i]
                chosen = rng.choice(len(options), size=k, replace=len(options) < k)
                texts += [options[j] for j in chosen]
        text_features = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
        logits = model.logit_scale.exp() * image_features @ text_features.T
        target = torch.arange(batch_size)
        loss = (
            F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :batch_size].T, target)
        ) / 2
        if hard_weight:  # row b: its prompt, then its own k negatives (columns B + b k ...)
            rows = torch.arange(batch_size)
            own = logits[:, batch_size:].view(batch_size, batch_size, k)[rows, rows]
            against = torch.cat([logits[rows, rows, None], own], dim=1)
            loss = loss + hard_weight * F.cross_entropy(against, torch.zeros_like(rows))
        if n_worse:  # each of the first n_worse prompts: its clean image above its degraded one
            first = torch.arange(n_worse)
            worse = model.logit_scale.exp() * (worse_features * text_features[:n_worse]).sum(-1)
            pair = torch.stack([logits[first, first], worse], dim=1)
            worse_term = F.cross_entropy(pair, torch.zeros_like(first))
            loss = loss + worse_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return {"loss": loss.item(), "degraded_term": worse_term.item()}


@torch.no_grad()
def mine_negatives(
    model, tokenizer, image_features, option_sets, k: int, mined: int, rng
) -> list[str]:
    """k negatives for each image (features (B, D), L2-normalised) from its options: the `mined`
    the model scores highest with it, then k - mined of the rest at random (with repeats where
    fewer are left)."""
    unique = sorted({text for options in option_sets for text in options})
    column = {text: j for j, text in enumerate(unique)}
    scores = image_features @ F.normalize(model.encode_text(tokenizer(unique)), dim=-1).T
    out = []
    for b, options in enumerate(option_sets):
        order = scores[b, [column[t] for t in options]].argsort(descending=True).tolist()
        hardest, rest = order[:mined], order[mined:] or order
        drawn = rng.choice(len(rest), size=k - len(hardest), replace=len(rest) < k - len(hardest))
        out += [options[j] for j in hardest + [rest[i] for i in drawn]]
    return out


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
    return scene_batch(scenes), degraded_copies(scenes, rng)


def degraded_copies(scenes, rng: np.random.Generator) -> torch.Tensor:
    """(n, 3, H, W): each scene's image with one degradation, the kinds in turn (DEGRADATIONS)."""
    kinds = [DEGRADATIONS[i % len(DEGRADATIONS)] for i in range(len(scenes))]
    return torch.stack([degrade(s, kind, rng) for s, kind in zip(scenes, kinds, strict=True)])


def train_aesthetic(
    head,
    clip_model,
    steps: int,
    n_scenes: int = 16384,
    lr: float = 3e-3,
    seed: int = 0,
    texture: float = 1.0,
    progress: bool = True,
    clean_score: float = 7.0,
    degraded_score: float = 3.0,
) -> dict[str, float]:
    """Fit the aesthetic MLP on CLIP embeddings to rank each clean render above its degraded copy.

    The loss is the pairwise logistic loss softplus(-(head(clean) - head(degraded))), the figure
    the head is judged by; regressing onto fixed scores (MSE onto 7 and 3, the LAION head's own
    recipe) ranks 86.5% of fresh pairs right over the shipped CLIP against 90-91% for this loss
    (docs/results.md, section 4). The ranking fixes no scale, so the last layer is then rescaled
    and shifted (a positive affine map: the ranking is unchanged) to give the training pairs'
    clean renders `clean_score` and degraded ones `degraded_score` on average (only shifted to
    their midpoint if the clean ones do not score higher, as after a test build's few steps).
    """
    clean, degraded = degraded_pairs(n_scenes, seed, texture)
    good = clip_image_embeddings(clip_model, clean)
    bad = clip_image_embeddings(clip_model, degraded)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    schedule = cosine_schedule(optimizer, steps)
    head.train()
    bar = tqdm(range(steps), desc="aesthetic head", disable=not progress)
    for _ in bar:
        pick = torch.randint(n_scenes, (256,), generator=generator)
        loss = F.softplus(head(bad[pick]) - head(good[pick])).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    head.eval()
    with torch.no_grad():
        good_scores, bad_scores = head(good), head(bad)
        # the map below is increasing, so it keeps this ranking
        train_accuracy = (good_scores > bad_scores).float().mean().item()
        mean_good, mean_bad = good_scores.mean().item(), bad_scores.mean().item()
        # A head too briefly trained to rank (a test build's few steps) is only shifted.
        scale = (
            (clean_score - degraded_score) / (mean_good - mean_bad) if mean_good > mean_bad else 1.0
        )
        last = head.layers[-1]
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(
            (clean_score + degraded_score) / 2 - scale * (mean_good + mean_bad) / 2
        )
    return {"ranking_loss": loss.item(), "train_rank_accuracy": train_accuracy}


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
    reward_seed: int | None = None,
) -> dict:
    """Train every shapes-world asset into `out` (policy/ with its image_tokenizer/, clip/,
    aesthetic.safetensors, build_report.json); returns the report. The folder appears whole or
    not at all. `texture` is the world's background knob (1: textured, 0: flat). `reward_seed`
    (default: `seed`) seeds the CLIP and aesthetic head stage on its own: its figures vary a lot
    with it (docs/results.md, section 4), and the shipped assets use seed 0 and reward_seed 1."""
    register_open_clip_configs()
    reward_seed = seed if reward_seed is None else reward_seed
    report: dict = {"seed": seed, "reward_stage_seed": reward_seed, "steps_scale": steps_scale}
    report["held_out_rule"] = scenes_module.HELD_OUT_RULE
    report.update(texture=texture, seconds={})
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

        build_reward_assets(folder, reward_seed, steps, scenes, report, texture, progress)
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
    clip_model = new_shapes_clip()
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
