"""LoRA adapters on a Janus policy's language model (through peft), saved, loaded and merged.

Adapters go on the language model's layers only (`model.language_model.layers.N.*` modules
whose name ends in one of `target_modules`): the VQ, the understanding tower and its aligner
never see them. peft injects them in place; the policy wraps the injected base model (peft's
own wrapper forwards `.model` elsewhere) and keeps the PeftModel as `policy.adapter`, so that
  - only the adapters are trainable (and their optimizer state is all a checkpoint holds besides
    them);
  - the KL reference is the same weights with the adapters switched off (`AdaptersOff`): no
    second copy of the model;
  - a checkpoint's policy/ folder holds the adapters (adapter_config.json, safetensors) and the
    name of the base policy (lora_base.json); `load_policy` rebuilds it from both;
  - `merge_adapters` folds them into the weights for a plain folder that `from_pretrained`
    loads (`t2i-gcpo export`).
"""

from __future__ import annotations

import json
import re
from contextlib import nullcontext
from pathlib import Path

import torch

from t2i_gcpo.policies.base import Policy

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BASE_FILE = "lora_base.json"
ADAPTER_CONFIG = "adapter_config.json"


def target_pattern(names: tuple[str, ...] | list[str]) -> str:
    """A peft target regex: the language model's layer modules named `names`, nothing else."""
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
            raise ValueError(f"target module {name!r} must be a module name like 'q_proj'")
    alternatives = "|".join(re.escape(name) for name in names)
    return rf"(.*\.)?language_model\.layers\.\d+\.(.*\.)?({alternatives})"


def add_adapters(
    policy,
    r: int = 16,
    alpha: float = 32.0,
    dropout: float = 0.0,
    target_modules: tuple[str, ...] | list[str] = DEFAULT_TARGETS,
    base: str | None = None,
):
    """A JanusPolicy with fresh LoRA adapters (B = 0: it scores exactly as `policy` does).
    `base` names the base policy in checkpoints (default: where its weights came from)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_pattern(tuple(target_modules)),
        bias="none",
    )
    adapter = get_peft_model(policy.model, config)
    return _wrap(policy, adapter, base or policy.model.config._name_or_path)


def _wrap(policy, adapter, base: str):
    """The policy around peft's injected base model, with `adapter` kept beside it."""
    from t2i_gcpo.policies.janus import JanusPolicy

    wrapped = JanusPolicy(
        adapter.get_base_model(),
        policy.tokenizer,
        image_tokenizer=policy.image_tokenizer,
    )
    wrapped.adapter, wrapped.lora_base = adapter, base
    return wrapped


def is_adapter_folder(folder: Path) -> bool:
    """True for a policy folder written with adapters (see the module docstring)."""
    return (folder / ADAPTER_CONFIG).is_file() and (folder / BASE_FILE).is_file()


def save_adapters(policy, folder: Path) -> None:
    """Write the adapters (safetensors), their config and the base policy's name."""
    policy.adapter.save_pretrained(folder, safe_serialization=True)
    (folder / BASE_FILE).write_text(json.dumps({"base": policy.lora_base}) + "\n")


def load_adapters(folder: Path, load_base, trainable: bool = False):
    """A policy folder with adapters -> the base policy (`load_base(name)`) with them."""
    from peft import PeftModel

    base_name = json.loads((folder / BASE_FILE).read_text(encoding="utf-8"))["base"]
    base = load_base(base_name)
    adapter = PeftModel.from_pretrained(base.model, folder, is_trainable=trainable)
    return _wrap(base, adapter, base_name)


def make_adapters_trainable(policy) -> None:
    """Let the adapters of a loaded LoRA policy train again (peft loads them frozen)."""
    for name, parameter in policy.model.named_parameters():
        if "lora_" in name:
            parameter.requires_grad_(True)


def merge_adapters(policy):
    """The policy with its adapters folded into the weights (a plain JanusPolicy)."""
    from t2i_gcpo.policies.janus import JanusPolicy

    merged = policy.adapter.merge_and_unload()
    return JanusPolicy(merged, policy.tokenizer, image_tokenizer=policy.image_tokenizer)


def adapters_off(policy):
    """A context in which `policy` scores with its adapters disabled (a no-op without)."""
    adapter = getattr(policy, "adapter", None)
    return adapter.disable_adapter() if adapter is not None else nullcontext()


class AdaptersOff(Policy):
    """A LoRA policy seen with its adapters switched off: the KL reference of a LoRA run, the
    same weights without a second copy. Only scoring is offered."""

    def __init__(self, policy) -> None:
        self.policy = policy

    def token_logprobs(self, prompts, tokens, negative_prompts=None) -> torch.Tensor:
        with adapters_off(self.policy), torch.no_grad():
            return self.policy.token_logprobs(prompts, tokens, negative_prompts)

    def guided_logprobs(self, prompts, tokens, negative_prompts, cfg_scale, temperature=1.0):
        with adapters_off(self.policy), torch.no_grad():
            return self.policy.guided_logprobs(
                prompts, tokens, negative_prompts, cfg_scale, temperature
            )

    grid = property(lambda self: self.policy.grid)
    codebook_size = property(lambda self: self.policy.codebook_size)
    image_size = property(lambda self: self.policy.image_size)
    device = property(lambda self: self.policy.device)
    dtype = property(lambda self: self.policy.dtype)

    def sample(self, *args, **kwargs):
        with adapters_off(self.policy):
            return self.policy.sample(*args, **kwargs)

    def decode(self, tokens):
        return self.policy.decode(tokens)

    def encode(self, images):
        return self.policy.encode(images)

    def trainable_parameters(self):
        return []

    def save(self, directory):
        raise ValueError("the adapters-off view of a policy is not saved; save the policy")

    @classmethod
    def from_pretrained(cls, path_or_id, dtype=None, device=None):
        raise ValueError("load the LoRA policy and wrap it in AdaptersOff")

    def train(self, mode: bool = True) -> AdaptersOff:
        return self
