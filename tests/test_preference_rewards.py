"""PickScore and HPS on tiny models built from configs: the real transformers CLIPModel and
open_clip CLIP classes, loaded through the same code paths as the published checkpoints."""

from __future__ import annotations

import json
import string
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
)

from reward_models import HPSScore, PickScore, load_reward
from reward_models.preference import FLOW_GRPO_DIVISOR, OPENAI_MEAN, OPENAI_STD
from t2i_gcpo.toy.models import shapes_tokenizer
from tests.tolerances import SAME_MATHS

PROMPTS = ["a red circle", "two blue squares", "a green cross", "a cat"]


def clip_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP BPE tokenizer (no merges): every letter is a token."""
    letters = list(string.ascii_lowercase)
    vocab = ["<|startoftext|>", "<|endoftext|>"] + letters + [c + "</w>" for c in letters]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[])


@pytest.fixture(scope="module")
def pickscore_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pickscore")
    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2,
                     "max_position_embeddings": 77, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
        logit_scale_init_value=3.0,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def images(n: int, height: int = 40, width: int = 40) -> torch.Tensor:
    return torch.rand(n, 3, height, width, generator=torch.Generator().manual_seed(n))


def test_pickscore_is_the_clip_logit_of_each_image_with_its_prompt(pickscore_dir):
    reward = PickScore(pickscore_dir, local_files_only=True, batch_size=3)
    batch = images(4)
    scores = reward(batch, PROMPTS, [{}] * 4)

    # The published recipe: processor, then CLIPModel's own logits (exp(logit_scale) * cos).
    processor = CLIPProcessor.from_pretrained(pickscore_dir)
    model = CLIPModel.from_pretrained(pickscore_dir).eval()
    inputs = processor(
        text=PROMPTS, images=list(reward_pils(batch)), padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = model(**inputs).logits_per_image.diagonal()
    assert scores.shape == (4,) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, expected, **SAME_MATHS)
    # logit_scale 3.0 (exp 20.09) bounds |score| by 20.09.
    assert scores.abs().max() <= torch.tensor(3.0).exp() * (1 + 1e-6)
    assert scores.std() > 0  # the scores depend on the pairs

    scaled = PickScore(pickscore_dir, scale="flow_grpo", local_files_only=True)(
        batch, PROMPTS, [{}] * 4
    )
    torch.testing.assert_close(scaled, scores / FLOW_GRPO_DIVISOR, **SAME_MATHS)


def reward_pils(batch: torch.Tensor):
    from reward_models.base import to_pil

    return to_pil(batch)


def test_pickscore_is_registered_and_checks_its_arguments(pickscore_dir):
    reward = load_reward("pickscore", model=str(pickscore_dir), local_files_only=True)
    assert isinstance(reward, PickScore) and reward.wants_pil
    with pytest.raises(ValueError, match="scale='raw'.*logit"):
        PickScore(pickscore_dir, scale="raw", local_files_only=True)
    with pytest.raises(ValueError, match="got 2 images but 1 prompts"):
        reward(images(2), PROMPTS[:1], [{}] * 2)


TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 40, "width": 32, "heads": 2, "layers": 1,
                 "pad_id": 3, "eos_id": 2, "pool_type": "eos",
                 "hf_tokenizer_name": "t2i-gcpo-shapes"},
}  # fmt: skip


@pytest.fixture(scope="module")
def hps_files(tmp_path_factory) -> tuple[Path, Path, torch.nn.Module]:
    """An architecture folder (config and tokenizer, no weights) and an HPS-style checkpoint: a
    torch file {"state_dict": {"module.<key>": tensor}} as the HPS training code saves it."""
    folder = tmp_path_factory.mktemp("hps")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP}))
    shapes_tokenizer(append_eos=True).save_pretrained(folder)
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_OPEN_CLIP).eval()
    checkpoint = folder / "hps.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}},
               checkpoint)  # fmt: skip
    return folder, checkpoint, model


def test_hps_is_the_cosine_of_the_checkpoint_model_on_padded_images(hps_files):
    folder, checkpoint, model = hps_files
    reward = HPSScore(checkpoint, model_name=folder, image_size=32, batch_size=3)
    prompts = ["a red circle", "two blue squares", "a green cross"]
    # 16 x 32 images: the longest side is already 32, so the preprocess only pads 8 rows of
    # black (0) above and below, then normalises with the OpenAI mean and std.
    batch = images(3, height=16, width=32)
    scores = reward(batch, prompts, [{}] * 3)

    padded = F.pad(batch, (0, 0, 8, 8), value=0.0)
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    tokens = open_clip.get_tokenizer(f"local-dir:{folder}")(prompts)
    with torch.no_grad():
        image = model.encode_image((padded - mean) / std, normalize=True)
        text = model.encode_text(tokens, normalize=True)
    expected = (image * text).sum(-1)
    torch.testing.assert_close(scores, expected, **SAME_MATHS)
    assert scores.abs().max() <= 1 + 1e-6


def test_hps_reads_safetensors_and_refuses_a_checkpoint_of_another_model(hps_files, tmp_path):
    folder, checkpoint, model = hps_files
    weights = tmp_path / "hps.safetensors"
    save_file(model.state_dict(), weights)
    batch = images(2, 32, 32)
    from_torch = HPSScore(checkpoint, model_name=folder, image_size=32)(
        batch, PROMPTS[:2], [{}] * 2
    )
    from_safetensors = HPSScore(weights, model_name=folder, image_size=32)(
        batch, PROMPTS[:2], [{}] * 2
    )
    torch.testing.assert_close(from_torch, from_safetensors, rtol=0, atol=0)

    other = tmp_path / "other.safetensors"
    save_file({"visual.proj": torch.zeros(3, 3)}, other)
    with pytest.raises(ValueError, match="does not fit open_clip"):
        HPSScore(other, model_name=folder, image_size=32)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        HPSScore(tmp_path / "missing.pt", model_name=folder)
