"""What one training step needs in GPU memory, estimated from the config before any GPU is rented.

The policy's parameters are counted on the meta device (no weights are loaded or allocated);
the rest is arithmetic on the config, per GPU:

    weights       every parameter, in the dtype it is stored in: float32 for full fine-tuning
                  (mixed precision computes in bfloat16 over float32 master weights), the compute
                  dtype for a LoRA base, float32 for the adapters
    gradients     float32, one per trainable parameter
    optimizer     AdamW's two float32 moments per trainable parameter
    reference     the KL reference's own copy (none with LoRA: its adapters are switched off;
                  none when beta is 0), in its dtype
    activations   the update's forward kept for backward, for one minibatch: per layer, the
                  hidden states (checkpointing keeps only those) or about 16 values per hidden
                  unit plus the attention scores (without checkpointing), plus the float32
                  logits and log-softmax of the image tokens
    kv_cache      sampling's keys and values: 2 x layers x (2 x samples, both CFG branches) x
                  positions x key/value width, in the compute dtype

Sampling and the update happen one after the other, so the peak is the persistent part (weights,
optimizer, reference) plus the larger of (KV cache) and (gradients + activations). ZeRO-style
sharding divides what it shards (stage 1: optimizer; 2: + gradients; 3: + weights and the
reference) by the number of processes. GB are 1e9 bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

BYTES = {"float32": 4, "bfloat16": 2}


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a Janus-like model: parameter counts and the backbone's sizes."""

    total: int
    trainable: int
    lora: int
    layers: int
    hidden: int
    kv_width: int
    heads: int
    intermediate: int
    image_tokens: int
    codebook: int


@dataclass(frozen=True)
class StepPlan:
    """One step's layout: samples, positions, precision, LoRA, checkpointing, processes."""

    samples: int
    positions: int
    minibatch: int
    dtype: str = "float32"
    lora: bool = False
    checkpointing: bool = False
    reference: bool = True
    processes: int = 1
    zero_stage: int = 0


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU gigabytes of each part and the step's peak."""

    weights: float
    gradients: float
    optimizer: float
    reference: float
    activations: float
    kv_cache: float

    @property
    def peak(self) -> float:
        persistent = self.weights + self.optimizer + self.reference
        return persistent + max(self.kv_cache, self.gradients + self.activations)

    def rows(self) -> list[tuple[str, float]]:
        return [*asdict(self).items(), ("peak", self.peak)]


def estimate(shape: ModelShape, plan: StepPlan) -> MemoryEstimate:
    """The per-GPU memory of one step of `plan` on a model of `shape` (module docstring)."""
    compute = BYTES[plan.dtype]
    trainable = shape.lora if plan.lora else shape.trainable
    if plan.lora:
        weights = (shape.total * compute + shape.lora * 4) / 1e9
    else:
        weights = shape.total * 4 / 1e9
    gradients, optimizer = trainable * 4 / 1e9, trainable * 8 / 1e9
    reference = shape.total * compute / 1e9 if plan.reference and not plan.lora else 0.0
    tokens = plan.minibatch * plan.positions
    if plan.checkpointing:
        per_layer = tokens * shape.hidden * compute
        working = tokens * (16 * shape.hidden + 2 * shape.intermediate) * compute
        working += plan.minibatch * shape.heads * plan.positions**2 * compute
        layers = shape.layers * per_layer + working
    else:
        per_layer = tokens * (16 * shape.hidden + 2 * shape.intermediate) * compute
        per_layer += plan.minibatch * shape.heads * plan.positions**2 * compute
        layers = shape.layers * per_layer
    logits = 2 * plan.minibatch * shape.image_tokens * shape.codebook * 4
    activations = (layers + logits) / 1e9
    kv_cache = 2 * shape.layers * 2 * plan.samples * plan.positions * shape.kv_width * compute
    kv_cache /= 1e9
    world, stage = max(1, plan.processes), plan.zero_stage
    if stage >= 1:
        optimizer /= world
    if stage >= 2:
        gradients /= world
    if stage >= 3:
        weights, reference = weights / world, reference / world
    return MemoryEstimate(weights, gradients, optimizer, reference, activations, kv_cache)


def lora_parameters(model: torch.nn.Module, targets: list[str], r: int) -> int:
    """The parameters LoRA of rank r adds on the language model's layers' `targets` linears."""
    import re

    from t2i_gcpo.policies.lora import target_pattern

    pattern = re.compile(target_pattern(targets))
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and pattern.fullmatch(name):
            count += r * (module.in_features + module.out_features)
    return count


def janus_shape(config, lora: dict | None = None) -> ModelShape:
    """A JanusConfig -> its ModelShape, counting parameters on the meta device."""
    from transformers import JanusForConditionalGeneration

    with torch.device("meta"):
        model = JanusForConditionalGeneration(config)
    inner = model.model
    frozen = {
        id(p) for m in (inner.vqmodel, inner.vision_model, inner.aligner) for p in m.parameters()
    }
    parameters = list(model.parameters())
    text = config.text_config
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    kv_width = text.num_key_value_heads * head_dim
    added = 0
    if lora is not None:
        added = lora_parameters(model, lora["target_modules"], lora["r"])
    side = config.vq_config.num_patches
    return ModelShape(
        total=sum(p.numel() for p in parameters),
        trainable=sum(p.numel() for p in parameters if id(p) not in frozen),
        lora=added,
        layers=text.num_hidden_layers,
        hidden=text.hidden_size,
        kv_width=kv_width,
        heads=heads,
        intermediate=text.intermediate_size,
        image_tokens=side * side,
        codebook=config.vq_config.num_embeddings,
    )


def policy_config(name: str):
    """The JanusConfig of a policy name, folder or hub id, without loading its weights (a
    policy name from a plug-in is loaded: its factory is the only way to it)."""
    from pathlib import Path

    from transformers import AutoConfig

    from t2i_gcpo.policies import POLICIES, load_policy
    from t2i_gcpo.policies.lora import BASE_FILE, is_adapter_folder

    folder = Path(name).expanduser()
    if folder.is_dir() and is_adapter_folder(folder):
        import json

        return policy_config(json.loads((folder / BASE_FILE).read_text())["base"])
    if POLICIES.get(name) is not None:
        return load_policy(name).model.config
    return AutoConfig.from_pretrained(name)


def plan_report(config, processes: int = 1, zero_stage: int = 0) -> str:
    """The --dry-run table of a TrainConfig: each part of one step's per-GPU memory."""
    model_config = policy_config(config.policy.name)
    lora = config.policy.lora
    shape = janus_shape(model_config, lora)
    rollout, optim = config.rollout, config.optim
    if rollout.prompts_per_step % processes:
        raise ValueError(f"rollout.prompts_per_step must be a multiple of --processes {processes}")
    samples = rollout.prompts_per_step // processes * rollout.group_size
    prompt_positions = 64  # a formatted prompt's tokens, about
    plan = StepPlan(
        samples=samples,
        positions=shape.image_tokens + prompt_positions,
        minibatch=optim.minibatch_size or samples,
        dtype=config.policy.dtype,
        lora=lora is not None,
        checkpointing=config.policy.gradient_checkpointing,
        reference=config.preset.beta > 0,
        processes=processes,
        zero_stage=zero_stage,
    )
    result = estimate(shape, plan)
    trainable = shape.lora if plan.lora else shape.trainable
    lines = [
        f"{config.policy.name}: {shape.total / 1e6:.1f}M parameters, "
        f"{trainable / 1e6:.1f}M trainable ({'LoRA' if plan.lora else 'full'}, {plan.dtype}"
        f"{', checkpointing' if plan.checkpointing else ''}); {samples} samples x "
        f"{plan.positions} positions per process, minibatch {plan.minibatch}, {processes} "
        f"process(es), ZeRO stage {zero_stage}",
        "per GPU (GB):",
    ]
    lines += [f"  {name:12s} {value:8.2f}" for name, value in result.rows()]
    return "\n".join(lines)
