"""Architectures of the toy models as small JSON configs (model_configs/), built by one factory.

`janus_policy(name)` builds a random-init JanusPolicy (a JanusForConditionalGeneration and a
word-level tokenizer) from model_configs/<name>.json: "shapes-janus" is the shapes world's
policy before pretraining, "tiny-janus" the tiny model the tests and benchmarks use (a few
overrides, e.g. grid, reshape it). The shapes world's CLIP is model_configs/shapes-clip.json,
in open_clip's format.

Image-token grid: `grid x grid` tokens; the VQ decoder upsamples by
2 ** (len(channel_multiplier) - 1), so images are grid * that many pixels on a side. The
word-level tokenizer has no chat template, so prompts are formatted as `bos + words + boi`.
"""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    GenerationConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusVisionConfig,
    JanusVQVAEConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)
from transformers.initialization import no_init_weights

from t2i_gcpo.policies.janus import JanusPolicy

MODEL_CONFIGS = Path(__file__).parent / "model_configs"
SPECIAL_TOKENS = (
    "<unk>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<begin_of_image>",
    "<end_of_image>",
    "<image_placeholder>",
)
"""Special tokens of every toy tokenizer; their ids are their positions (unk 0 ... image 6)."""
UNK, BOS, EOS, PAD, BOI, EOI, IMAGE = range(len(SPECIAL_TOKENS))
CLIP_MEAN = (0.5, 0.5, 0.5)
CLIP_STD = (0.5, 0.5, 0.5)


def model_config(name: str) -> dict:
    """The JSON config model_configs/<name>.json as a dict."""
    path = MODEL_CONFIGS / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in MODEL_CONFIGS.glob("*.json"))
        raise ValueError(f"no toy model config {name!r}; known: {known}")
    return json.loads(path.read_text(encoding="utf-8"))


def word_tokenizer(words: list[str], vocab_size: int, append_eos: bool = False):
    """A lower-casing word-level tokenizer over SPECIAL_TOKENS + `words`. `append_eos` ends
    every text with <eos> (the CLIP text tower pools there); the policy's adds nothing."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({word: len(SPECIAL_TOKENS) + i for i, word in enumerate(words)})
    if len(vocab) > vocab_size:
        raise ValueError(f"{len(vocab)} tokens do not fit a text vocabulary of {vocab_size}")
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if append_eos:
        backend.post_processor = processors.TemplateProcessing(
            single="$A <eos>", special_tokens=[("<eos>", EOS)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        additional_special_tokens=list(SPECIAL_TOKENS[4:]),
        padding_side="right" if append_eos else "left",
    )
    tokenizer.do_lower_case = True
    return tokenizer


def janus_config(spec: dict) -> JanusConfig:
    """A JanusConfig from a toy model spec (see model_configs/*-janus.json)."""
    text, grid, patch = spec["text"], spec["grid"], spec["patch_size"]
    hidden = text["hidden_size"]
    text_config = LlamaConfig(
        vocab_size=spec["text_vocab_size"],
        hidden_size=hidden,
        intermediate_size=text["mlp_ratio"] * hidden,
        num_hidden_layers=text["num_hidden_layers"],
        num_attention_heads=text["num_attention_heads"],
        num_key_value_heads=text["num_attention_heads"],
        max_position_embeddings=spec["max_text_tokens"] + grid * grid,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    vision_config = JanusVisionConfig(  # the understanding tower: unused by generation
        **spec["vision"],
        image_size=grid * patch,
        patch_size=patch,
        projection_dim=hidden,
        num_image_tokens=grid * grid,
    )
    vq_config = JanusVQVAEConfig(**spec["vq"], projection_dim=hidden, image_token_embed_dim=hidden)
    return JanusConfig(
        text_config=text_config,
        vision_config=vision_config,
        vq_config=vq_config,
        image_token_id=IMAGE,
    )


def generation_config(spec: dict) -> GenerationConfig:
    """Special ids, the image-start token and the default guidance scale of a toy policy.

    A fresh GenerationConfig, not one derived from the model config: those are saved with
    `_from_model_config: true`, and loading such a file drops extra keys like generation_kwargs.
    """
    return GenerationConfig(
        bos_token_id=BOS,
        pad_token_id=PAD,
        eos_token_id=EOS,
        generation_kwargs={"boi_token_id": BOI},
        guidance_scale=spec.get("guidance_scale"),
    )


def _redraw_weights(model: JanusForConditionalGeneration, std: float, seed: int) -> None:
    """Re-draw every non-VQ weight matrix from N(0, std^2) so the logits are far from uniform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim >= 2 and not name.startswith("model.vqmodel."):
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def janus_policy(
    name: str,
    seed: int = 0,
    init_std: float | None = None,
    dtype: torch.dtype = torch.float32,
    image_tokenizer: torch.nn.Module | None = None,
    **overrides,
) -> JanusPolicy:
    """A random-init JanusPolicy of model_configs/<name>.json.

    overrides: `grid`, `hidden_size`, `num_layers`, `codebook_size` replace the config's.
    `init_std` re-draws the non-VQ matrices with that std (the default init of 0.02 gives
    near-uniform logits, so the two CFG branches would hardly differ); None keeps it.
    `image_tokenizer` decodes the tokens instead of the model's own VQ (see JanusPolicy).
    """
    spec = _with_overrides(model_config(name), overrides)
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(janus_config(spec))
    if init_std is not None:
        _redraw_weights(model, init_std, seed)
    model.generation_config = generation_config(spec)
    tokenizer = word_tokenizer(spec["words"], spec["text_vocab_size"])
    return JanusPolicy(model.to(dtype), tokenizer, image_tokenizer=image_tokenizer)


def _with_overrides(spec: dict, overrides: dict) -> dict:
    """A copy of a spec with the supported overrides applied."""
    places = {
        "grid": ("grid",),
        "hidden_size": ("text", "hidden_size"),
        "num_layers": ("text", "num_hidden_layers"),
        "codebook_size": ("vq", "num_embeddings"),
    }
    unknown = sorted(set(overrides) - set(places))
    if unknown:
        raise ValueError(f"unknown overrides {unknown}; supported: {sorted(places)}")
    spec = json.loads(json.dumps(spec))
    for key, value in overrides.items():
        *parents, leaf = places[key]
        target = spec
        for parent in parents:
            target = target[parent]
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
        target[leaf] = value
    return spec


def tiny_janus_policy(
    grid: int = 4,
    hidden_size: int = 32,
    num_layers: int = 2,
    codebook_size: int = 64,
    seed: int = 0,
    init_std: float | None = 0.3,
    dtype: torch.dtype = torch.float32,
) -> JanusPolicy:
    """The tiny random Janus the tests and benchmarks use (model_configs/tiny-janus.json):
    built on the CPU in well under a second, no download."""
    return janus_policy(
        "tiny-janus",
        seed=seed,
        init_std=init_std,
        dtype=dtype,
        grid=grid,
        hidden_size=hidden_size,
        num_layers=num_layers,
        codebook_size=codebook_size,
    )


JANUS_PRO_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}<|User|>: "
    "{% for part in message['content'] %}{{ part['text'] }}{% endfor %}\n\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
)
"""Janus-Pro's generation prompt: "<|User|>: {prompt}\n\n<|Assistant|>:", then the image start."""


def janus_pro_config(size: str = "1b", num_layers: int | None = None) -> JanusConfig:
    """The configuration of Janus-Pro-1B or -7B (model_configs/janus-pro-<size>.json: its language
    model, SigLIP understanding tower, 16,384-code VQ and 24 x 24 image grid), with the language
    model cut to `num_layers` layers if given. Random weights, for tests and benchmarks."""
    spec = model_config(f"janus-pro-{size}")
    text = dict(spec["text"])
    if num_layers is not None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        text["num_hidden_layers"] = num_layers
    ids = spec["special_tokens"]
    text_config = LlamaConfig(
        **text, bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"]
    )
    vision_config = JanusVisionConfig(
        image_size=spec["image_size"], patch_size=spec["patch_size"],
        projection_dim=spec["projection_dim"],
        num_image_tokens=(spec["image_size"] // spec["patch_size"]) ** 2,
    )  # fmt: skip
    vq_config = JanusVQVAEConfig(
        projection_dim=spec["projection_dim"], image_token_embed_dim=spec["projection_dim"]
    )
    return JanusConfig(
        text_config=text_config,
        vision_config=vision_config,
        vq_config=vq_config,
        image_token_id=ids["image"],
    )


def janus_pro_tokenizer(size: str = "1b") -> PreTrainedTokenizerFast:
    """A stand-in for Janus-Pro's tokenizer, for runs without the hub: its vocabulary size, its
    special tokens at their ids and its chat format, with a word-level vocabulary (the words
    of the shapes world and GenEval's templates, and Janus's chat markers; others are <unk>)."""
    spec = model_config(f"janus-pro-{size}")
    ids, size_ = spec["special_tokens"], spec["text"]["vocab_size"]
    names = {"bos": "<｜begin▁of▁sentence｜>", "eos": "<｜end▁of▁sentence｜>", "pad": "<｜▁pad▁｜>",
             "boi": "<begin_of_image>", "eoi": "<end_of_image>", "image": "<image_placeholder>",
             "unk": "<unk>"}  # fmt: skip
    vocab = {f"<w{i}>": i for i in range(size_)}
    markers = ["<|User|>", "<|Assistant|>"]
    words = [*model_config("shapes-janus")["words"], *markers, ":"]
    for i, word in enumerate(words):
        vocab.pop(f"<w{1000 + i}>")
        vocab[word] = 1000 + i
    for key, token in names.items():
        index = ids.get(key, 3)
        vocab.pop(f"<w{index}>", None)
        vocab[token] = index
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token=names["bos"],
        eos_token=names["eos"],
        pad_token=names["pad"],
        additional_special_tokens=[names["boi"], names["eoi"], names["image"], *markers],
        padding_side="left",
    )
    tokenizer.chat_template = JANUS_PRO_CHAT_TEMPLATE
    return tokenizer


def janus_pro_policy(
    size: str = "1b", num_layers: int | None = 2, seed: int = 0, dtype=torch.float32
) -> JanusPolicy:
    """A Janus-Pro-shaped JanusPolicy with random weights (see janus_pro_config)."""
    spec = model_config(f"janus-pro-{size}")
    ids = spec["special_tokens"]
    with no_init_weights():  # transformers' per-module init takes minutes at this size
        model = JanusForConditionalGeneration(janus_pro_config(size, num_layers))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim >= 2:
                parameter.normal_(0.0, 0.02, generator=generator)
            else:  # norms' scales 1, biases 0
                parameter.fill_(1.0 if "norm" in name and name.endswith("weight") else 0.0)
    model = model.to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos"], pad_token_id=ids["pad"], eos_token_id=ids["eos"],
        generation_kwargs={"boi_token_id": ids["boi"]}, guidance_scale=spec["guidance_scale"],
    )  # fmt: skip
    return JanusPolicy(model, janus_pro_tokenizer(size))


def shapes_clip_config() -> dict:
    """open_clip model_cfg of the shapes world's CLIP (model_configs/shapes-clip.json)."""
    return model_config("shapes-clip")


def shapes_tokenizer(append_eos: bool = False) -> PreTrainedTokenizerFast:
    """The shapes world's word-level tokenizer (the policy's; with `append_eos`, the CLIP's)."""
    spec = model_config("shapes-janus")
    return word_tokenizer(spec["words"], spec["text_vocab_size"], append_eos)


def new_shapes_clip():
    """A freshly initialised shapes CLIP, ready to train. Its image tower's position embedding
    starts from 2-D sines and cosines (the row and the column in separate channels; open_clip's
    "sin_cos_2d", which it keeps frozen) and is trained from there. Measured (the reward stage,
    seeds 0 / 1, benchmarks/clip_variants.py): a position embedding learned from a random start
    left the CLIP ranking "left of" scenes as "above" and "right of" ones as "below" (position
    prompts 30.3 / 53.9%); this start, 94.4 / 88.8% at 1500 steps, 96.6 / 98.9% at the build's
    2250."""
    register_open_clip_configs()
    model = open_clip.create_model("shapes-clip")
    model.visual.positional_embedding.requires_grad_(True)
    return model


def register_open_clip_configs() -> None:
    """Make open_clip.create_model("shapes-clip") build the shapes world's CLIP architecture."""
    if "shapes-clip" not in open_clip.list_models():
        open_clip.add_model_config(MODEL_CONFIGS / "shapes-clip.json")
