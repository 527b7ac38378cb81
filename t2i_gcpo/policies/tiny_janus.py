"""Tiny random Janus models for tests and benchmarks: no download, built on CPU in well under 1 s.

The image-token grid is `grid x grid`: the vision config's `image_size // patch_size` sets the
VQ model's `num_patches` (its latent side), and the VQ decoder upsamples by
`2 ** (len(channel_multiplier) - 1)`, so images are `grid * 2 ** (len(channel_multiplier) - 1)`
pixels on a side. A word-level tokenizer whose special ids match the config stands in for the
real one; it has no chat template, so prompts are formatted as `bos + words + boi`.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GenerationConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusVisionConfig,
    JanusVQVAEConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

from t2i_gcpo.policies.janus import JanusPolicy

SPECIAL_TOKENS = {
    "unk": "<unk>",
    "bos": "<bos>",
    "eos": "<eos>",
    "pad": "<pad>",
    "boi": "<begin_of_image>",
    "eoi": "<end_of_image>",
    "image": "<image_placeholder>",
}
"""The tiny tokenizer's special tokens; their ids are their order here (unk 0 ... image 6)."""

_WORD_GROUPS = (
    "a an the of and on in with above below left right small big",
    "red green blue yellow black white purple orange",
    "circle square triangle star cat dog house tree car photo drawing",
)
TINY_WORDS = tuple(word for group in _WORD_GROUPS for word in group.split())
"""The tiny tokenizer's word vocabulary (ids follow the special tokens)."""

TEXT_VOCAB_SIZE = 64


def _special_id(name: str) -> int:
    """The id of special token `name` (a key of SPECIAL_TOKENS) in the tiny tokenizer."""
    return list(SPECIAL_TOKENS).index(name)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over TINY_WORDS with unk/bos/eos/pad and the Janus image tokens."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS.values())}
    vocab.update({word: len(vocab) + i for i, word in enumerate(TINY_WORDS)})
    if len(vocab) > TEXT_VOCAB_SIZE:
        raise ValueError(f"tiny vocabulary has {len(vocab)} tokens, more than {TEXT_VOCAB_SIZE}")
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=SPECIAL_TOKENS["unk"],
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        additional_special_tokens=[SPECIAL_TOKENS[k] for k in ("boi", "eoi", "image")],
        padding_side="left",
    )


def tiny_janus_config(
    grid: int = 4,
    hidden_size: int = 32,
    num_layers: int = 2,
    codebook_size: int = 64,
) -> JanusConfig:
    """A random-init Janus config with a `grid x grid` image-token grid and a tiny Llama."""
    if grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid}")
    patch_size = 4
    text_config = LlamaConfig(
        vocab_size=TEXT_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64 + grid * grid,
        bos_token_id=_special_id("bos"),
        eos_token_id=_special_id("eos"),
        pad_token_id=_special_id("pad"),
    )
    vision_config = JanusVisionConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=grid * patch_size,
        patch_size=patch_size,
        projection_dim=hidden_size,
        num_image_tokens=grid * grid,
    )
    vq_config = JanusVQVAEConfig(
        embed_dim=8,
        num_embeddings=codebook_size,
        latent_channels=32,
        base_channels=32,
        channel_multiplier=[1, 1],
        num_res_blocks=1,
        projection_dim=hidden_size,
        image_token_embed_dim=hidden_size,
    )
    return JanusConfig(
        text_config=text_config,
        vision_config=vision_config,
        vq_config=vq_config,
        image_token_id=_special_id("image"),
    )


def _redraw_weights(model: JanusForConditionalGeneration, std: float, seed: int) -> None:
    """Re-draw every non-VQ weight matrix from N(0, std^2) so the logits are far from uniform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim >= 2 and not name.startswith("model.vqmodel."):
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def tiny_janus_policy(
    grid: int = 4,
    hidden_size: int = 32,
    num_layers: int = 2,
    codebook_size: int = 64,
    seed: int = 0,
    init_std: float | None = 0.3,
    dtype: torch.dtype = torch.float32,
) -> JanusPolicy:
    """A JanusPolicy over a tiny random Janus model and the tiny tokenizer.

    `init_std` re-draws the non-VQ matrices with that std (the default init of 0.02 gives
    near-uniform logits, so the two CFG branches would hardly differ); None keeps the default.
    """
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(
        tiny_janus_config(grid, hidden_size, num_layers, codebook_size)
    )
    if init_std is not None:
        _redraw_weights(model, init_std, seed)
    # A fresh GenerationConfig, not one derived from the model config: those are saved with
    # `_from_model_config: true`, and loading such a file drops extra keys like generation_kwargs.
    model.generation_config = GenerationConfig(
        bos_token_id=_special_id("bos"),
        pad_token_id=_special_id("pad"),
        eos_token_id=_special_id("eos"),
        generation_kwargs={"boi_token_id": _special_id("boi")},
    )
    return JanusPolicy(model.to(dtype), tiny_tokenizer())
