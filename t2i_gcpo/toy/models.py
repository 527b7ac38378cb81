"""Architectures of the shapes world's tiny models: tokenizer, Janus policy config, CLIP config.

Each is a small, fixed config so that `t2i-gcpo toy build` and the tests build the same models.
"""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    GenerationConfig,
    JanusConfig,
    JanusVisionConfig,
    JanusVQVAEConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

from t2i_gcpo.toy.scenes import COLORS, IMAGE_SIZE, SHAPES

SPECIAL_TOKENS = (
    "<unk>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<begin_of_image>",
    "<end_of_image>",
    "<image_placeholder>",
)
UNK, BOS, EOS, PAD, BOI, EOI, IMAGE = range(len(SPECIAL_TOKENS))
WORDS = (
    "a",
    "an",
    "the",
    "at",
    "and",
    "top",
    "bottom",
    "left",
    "right",
    "center",
    "of",
    "photo",
    *COLORS,
    *SHAPES,
)
TEXT_VOCAB_SIZE = 32
GRID = 8  # image tokens per side: 32 px images, 4 px per token
CODEBOOK_SIZE = 512
HIDDEN = 128
MODEL_CONFIGS = Path(__file__).parent / "model_configs"
CLIP_MEAN = (0.5, 0.5, 0.5)
CLIP_STD = (0.5, 0.5, 0.5)


def shapes_tokenizer(append_eos: bool = False) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over WORDS (lower-cased). `append_eos` ends every text with <eos>
    (the CLIP text tower pools there); the policy's tokenizer adds nothing."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({word: len(SPECIAL_TOKENS) + i for i, word in enumerate(WORDS)})
    assert len(vocab) <= TEXT_VOCAB_SIZE, "the word list outgrew TEXT_VOCAB_SIZE"
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
        padding_side="left" if not append_eos else "right",
    )
    tokenizer.do_lower_case = True
    return tokenizer


def shapes_janus_config() -> JanusConfig:
    """The tiny Janus of the shapes world: a 4-layer Llama over an 8 x 8 grid of 128 codes."""
    text = LlamaConfig(
        vocab_size=TEXT_VOCAB_SIZE,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    vision = JanusVisionConfig(  # the understanding tower: unused by generation, kept minimal
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=IMAGE_SIZE // GRID,
        projection_dim=HIDDEN,
        num_image_tokens=GRID * GRID,
    )
    vq = JanusVQVAEConfig(
        embed_dim=16,
        num_embeddings=CODEBOOK_SIZE,
        latent_channels=64,
        base_channels=32,
        channel_multiplier=[1, 1, 2],
        num_res_blocks=0,
        projection_dim=HIDDEN,
        image_token_embed_dim=HIDDEN,
    )
    return JanusConfig(text_config=text, vision_config=vision, vq_config=vq, image_token_id=IMAGE)


def shapes_generation_config() -> GenerationConfig:
    """Generation settings saved with the policy (special ids and the image-start token)."""
    return GenerationConfig(
        bos_token_id=BOS,
        pad_token_id=PAD,
        eos_token_id=EOS,
        generation_kwargs={"boi_token_id": BOI},
    )


def shapes_clip_config() -> dict:
    """open_clip model_cfg of the shapes world's CLIP (model_configs/shapes-clip.json)."""
    return json.loads((MODEL_CONFIGS / "shapes-clip.json").read_text())


def register_open_clip_configs() -> None:
    """Make open_clip.create_model("shapes-clip") build the shapes world's CLIP architecture."""
    if "shapes-clip" not in open_clip.list_models():
        open_clip.add_model_config(MODEL_CONFIGS)
