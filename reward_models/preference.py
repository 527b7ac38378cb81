"""Human-preference rewards: PickScore and HPSv2 / HPSv2.1, loaded from a local folder, a file or
a hub id, with no package of their authors' (and nothing unpickled beyond tensors).

PickScore (Kirstain et al., Pick-a-Pic): a transformers `CLIPModel` fine-tuned on preferences.
    score = exp(logit_scale) * cos(image embedding, text embedding), as its authors compute it
    (about 18-23 for real images); `scale: flow_grpo` divides it by 26, as Flow-GRPO does, to
    bring it near [0, 1]. Images go through the model's CLIP image processor (shortest side
    resized, centre crop, normalised), as PIL images.
HPSv2 (Wu et al., Human Preference Score v2): an open_clip ViT-H-14 whose weights are the HPS
    checkpoint's `state_dict`. Images: the longest side resized to 224 (bicubic), zero-padded to
    224 x 224, normalised with CLIP's mean and std. score = cos(image, text) of the normalised
    embeddings (about 0.2-0.35).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from reward_models.aesthetic import load_state_dict_file
from reward_models.base import RewardModel, to_pil
from reward_models.clip import (
    ImagePreprocess,
    load_open_clip_tokenizer,
    resolve_device,
    resolve_dtype,
    schema_name,
)
from reward_models.registry import register_reward

PICKSCORE_SCALES = ("logit", "flow_grpo")
FLOW_GRPO_DIVISOR = 26.0
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@register_reward("pickscore")
class PickScore(RewardModel):
    """PIL images, prompts -> PickScore (N,) (see the module docstring).

    model: a folder or hub id of a transformers CLIPModel (e.g. "yuvalkirstain/PickScore_v1"),
    loaded from safetensors; processor: where its CLIP processor lives (default: `model`; the
    authors use "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"). scale: "logit" or "flow_grpo".
    """

    name = "pickscore"
    wants_pil = True

    def __init__(
        self,
        model: str | Path = "yuvalkirstain/PickScore_v1",
        processor: str | Path | None = None,
        scale: str = "logit",
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        batch_size: int = 32,
        local_files_only: bool = False,
    ) -> None:
        from transformers import AutoProcessor, CLIPModel

        if scale not in PICKSCORE_SCALES:
            raise ValueError(f"scale={scale!r}; expected one of {PICKSCORE_SCALES}")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; expected a positive integer")
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        self.model = CLIPModel.from_pretrained(
            str(model), dtype=self.dtype, use_safetensors=True, local_files_only=local_files_only
        )
        self.model = self.model.to(self.device).eval().requires_grad_(False)
        self.processor = AutoProcessor.from_pretrained(
            str(processor or model), local_files_only=local_files_only
        )
        self.scale, self.batch_size = scale, batch_size

    @torch.no_grad()
    def __call__(self, images, prompts: Sequence[str], metadata: Sequence[dict]) -> torch.Tensor:
        """N PIL images (or a tensor (N, 3, H, W) in [0, 1], turned into them), N prompts."""
        if isinstance(images, torch.Tensor):
            images = to_pil(images)
        if len(prompts) != len(images):
            raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
        scores = []
        for start in range(0, len(images), self.batch_size):
            part = slice(start, start + self.batch_size)
            scores.append(self.score(list(images[part]), list(prompts[part])))
        return torch.cat(scores)

    def score(self, images: list, prompts: list[str]) -> torch.Tensor:
        """N PIL images, N prompts -> N scores (float32, on the CPU)."""
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        text = self.processor(
            text=prompts, padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        image_out = self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype))
        text_out = self.model.get_text_features(
            input_ids=text["input_ids"].to(self.device),
            attention_mask=text["attention_mask"].to(self.device),
        )
        image = F.normalize(image_out.pooler_output.float(), dim=-1)
        text = F.normalize(text_out.pooler_output.float(), dim=-1)
        scores = self.model.logit_scale.exp().float() * (image * text).sum(dim=-1)
        if self.scale == "flow_grpo":
            scores = scores / FLOW_GRPO_DIVISOR
        return scores.cpu()


@register_reward("hps")
class HPSScore(RewardModel):
    """images (N, 3, H, W) in [0, 1], prompts -> HPS (N,) (see the module docstring).

    checkpoint: the HPS file (HPS_v2.1_compressed.pt or HPS_v2_compressed.pt, a dict whose
    "state_dict" holds the weights, read with weights_only; or a .safetensors state dict).
    model_name: the open_clip architecture ("ViT-H-14"), or a folder with its
    open_clip_config.json, created without pretrained weights.
    """

    name = "hps"

    def __init__(
        self,
        checkpoint: str | Path,
        model_name: str = "ViT-H-14",
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        batch_size: int = 32,
        image_size: int = 224,
    ) -> None:
        import open_clip

        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; expected a positive integer")
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        state = load_state_dict_file(checkpoint)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        # The architecture only: the weights are the checkpoint's (a "local-dir:" folder or a
        # folder path gives its open_clip_config.json).
        self.model = open_clip.create_model(
            schema_name(model_name), pretrained=None, load_weights=False
        )
        expected = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(
            f"{k} {tuple(state[k].shape)} (expected {expected[k]})"
            for k in set(expected) & set(state)
            if tuple(state[k].shape) != expected[k]
        )
        if missing or unexpected or wrong:
            raise ValueError(
                f"checkpoint={str(checkpoint)!r} does not fit open_clip {str(model_name)!r}: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
            )
        self.model.load_state_dict(state)
        self.model = self.model.to(self.device, self.dtype).eval().requires_grad_(False)
        self.tokenizer = load_open_clip_tokenizer(model_name)
        self.preprocess = ImagePreprocess(
            (image_size, image_size), OPENAI_MEAN, OPENAI_STD, "bicubic", "longest", fill=0.0
        )
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> torch.Tensor:
        if len(prompts) != len(images):
            raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
        scores = []
        for start in range(0, len(images), self.batch_size):
            batch = self.preprocess(images[start : start + self.batch_size].to(self.device))
            tokens = self.tokenizer(list(prompts[start : start + self.batch_size]))
            image = self.model.encode_image(batch.to(self.dtype), normalize=True).float()
            text = self.model.encode_text(tokens.to(self.device), normalize=True).float()
            scores.append((image * text).sum(dim=-1))
        return torch.cat(scores).to(images.device)
