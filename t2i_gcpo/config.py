"""Typed training configuration: YAML in, `--section.field VALUE` overrides, validated per field.

A config is a `TrainConfig` of sections (policy, prompts, rollout, algo, rewards, optim,
reference, logging, checkpoint) plus a seed. Every field has a docstring and is checked in its
section's `__post_init__`; bad values raise `ConfigError` naming the field, the value given and
what is allowed. Layers, later ones winning: the defaults, the run's saved config.yaml (only
with --resume), a YAML file (--config), then command-line overrides.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from t2i_gcpo.algos import PRESETS, AlgorithmPreset, get_preset
from t2i_gcpo.data.negatives import NEGATIVE_VIEWS

POLICY_DTYPES = ("float32", "bfloat16")
DEVICES = ("auto", "cpu")
CFG_NEGATIVES = ("algo", "null")
NONFINITE_POLICIES = ("error", "drop")
SCHEDULES = ("constant", "cosine")
TRACKERS = ("tensorboard", "wandb", "none")
SAMPLERS = ("auto", "dynamic", "static")
ROLLOUT_LOGPROBS = ("positive", "guided")


class ConfigError(ValueError):
    """A config value, key or file that cannot be used; the message names it and what is allowed."""


# ---------------------------------------------------------------------------------------------
# Checks shared by the sections
# ---------------------------------------------------------------------------------------------


def _choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raise ConfigError unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not supported; expected one of {tuple(allowed)}")


def _at_least(name: str, value: int | float | None, minimum: int | float) -> None:
    """Raise ConfigError unless `value` (None passes) is >= minimum."""
    if value is not None and value < minimum:
        raise ConfigError(f"{name}={value!r} must be >= {minimum}")


def _above(name: str, value: float | None, bound: float) -> None:
    """Raise ConfigError unless `value` (None passes) is > bound."""
    if value is not None and not value > bound:
        raise ConfigError(f"{name}={value!r} must be > {bound}")


def _non_empty(name: str, value: str | None) -> None:
    """Raise ConfigError if `value` is an empty or blank string."""
    if value is not None and not value.strip():
        raise ConfigError(f"{name}={value!r} must be a non-empty string")


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


@dataclass
class PolicyConfig:
    """The model being trained."""

    name: str = "shapes"
    """A policy name ("shapes": the shapes world's pretrained tiny Janus, or any installed
    plug-in's), a local folder written by `policy.save` (e.g. a checkpoint's policy/ folder)
    or a hub id 'owner/name'."""
    dtype: str = "float32"
    """Compute dtype: "float32", or "bfloat16" (mixed precision: full fine-tuning keeps float32
    master weights and optimizer state and computes in bfloat16 through accelerate; with LoRA
    the base weights are stored in bfloat16 and the adapters and their optimizer state in
    float32). Log-probs and the loss are float32 either way."""
    device: str = "auto"
    """"auto": the device accelerate gives each process (its GPU when launched on GPUs, else
    the CPU); "cpu": force the CPU."""
    gradient_checkpointing: bool = False
    """Recompute the backbone's activations in the backward pass (less memory, more time)."""
    cpu_threads: int | None = None
    """torch's CPU threads in each process (null: torch's default). Small models on a shared
    CPU run fastest with 1: more threads than free cores can slow a step tenfold."""
    lora: dict | None = None
    """Train LoRA adapters on the language model instead of every weight: {r, alpha, dropout,
    target_modules} (defaults 16, 2r, 0.0, every attention and MLP projection); null: full
    fine-tuning. The KL reference is then the same model with its adapters off (no second
    copy), and checkpoints hold the adapters (`t2i-gcpo export` merges them)."""

    def __post_init__(self) -> None:
        _non_empty("policy.name", self.name)
        _choice("policy.dtype", self.dtype, POLICY_DTYPES)
        _choice("policy.device", self.device, DEVICES)
        _at_least("policy.cpu_threads", self.cpu_threads, 1)
        if self.lora is not None:
            self.lora = lora_settings(self.lora)


LORA_KEYS = ("r", "alpha", "dropout", "target_modules")


def lora_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """policy.lora with its defaults filled in and every value checked."""
    from t2i_gcpo.policies.lora import DEFAULT_TARGETS

    unknown = sorted(set(raw) - set(LORA_KEYS))
    if unknown:
        raise ConfigError(
            f"policy.lora: unknown keys {unknown}; valid keys: {', '.join(LORA_KEYS)}"
        )
    r = raw.get("r", 16)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ConfigError(f"policy.lora.r={r!r} must be an int >= 1")
    alpha = _finite_float("policy.lora.alpha", raw.get("alpha", 2 * r))
    _above("policy.lora.alpha", alpha, 0.0)
    dropout = _finite_float("policy.lora.dropout", raw.get("dropout", 0.0))
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"policy.lora.dropout={dropout!r} must lie in [0, 1)")
    targets = raw.get("target_modules", list(DEFAULT_TARGETS))
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) for t in targets):
        raise ConfigError(
            f"policy.lora.target_modules={targets!r} must be a list of module names, e.g. "
            f"{list(DEFAULT_TARGETS[:4])}"
        )
    return {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": list(targets)}


@dataclass
class PromptsConfig:
    """Where the training and evaluation prompts come from."""

    train: str = "shapes:train"
    """Training prompts: a named prompt set ("shapes:train", "shapes:eval") or a .jsonl / .txt
    file (see t2i_gcpo.data.prompts for the format)."""
    eval: str | None = "shapes:eval"
    """Held-out prompts for periodic evaluation (same forms as `train`), or null for none."""

    def __post_init__(self) -> None:
        _non_empty("prompts.train", self.train)
        _non_empty("prompts.eval", self.eval)


@dataclass
class RolloutConfig:
    """How each step samples its images."""

    group_size: int = 8
    """Images sampled per prompt: one group, whose rewards give the group-relative advantage."""
    prompts_per_step: int = 4
    """Prompts per training step over all processes (split evenly between them)."""
    cfg_scale: float | None = None
    """Classifier-free guidance scale for sampling (1 = no guidance); null: the policy's own
    default (its generation_config's guidance_scale, else 5)."""
    cfg_negative: str = "algo"
    """Negative branch of CFG while sampling: "algo" guides against the credit's negative
    (algo.negative: the null prompt, the caption or the swapped caption), so its recorded
    log-probs give the credit for free; "null" always guides against the null prompt (a
    caption credit then costs one extra teacher-forced pass)."""
    temperature: float = 1.0
    """Sampling temperature applied to the guided logits."""
    top_k: int | None = None
    """Keep only the k most likely tokens while sampling (null: all)."""
    top_p: float | None = None
    """Nucleus sampling mass in (0, 1] (null: off)."""
    logprobs: str = "positive"
    """The log-probs the loss's ratio and KL are taken over: "positive" (the prompt's branch
    alone, as the reference GCPO and Janus RL recipes do) or "guided" (the distribution the
    tokens were drawn from: the CFG-guided logits over the temperature, before top-k / top-p;
    the update then also runs the negative branch, with a gradient). The two are the same at
    cfg_scale 1 (the shapes policy's default). Under guidance, a step on the prompt's branch
    moves the null branch almost as much, and guidance subtracts that move: measured in
    benchmarks/guided_step.py (docs/results.md, section 4)."""
    sampler: str = "auto"
    """The sampling loop: "dynamic" (a KV cache that grows a step at a time), "static" (a
    preallocated cache with fixed shapes; on CUDA the decode step is compiled once and replayed
    as a CUDA graph) or "auto" (static on CUDA, dynamic elsewhere). Both draw the same tokens."""

    def __post_init__(self) -> None:
        _at_least("rollout.group_size", self.group_size, 2)
        _at_least("rollout.prompts_per_step", self.prompts_per_step, 1)
        _at_least("rollout.cfg_scale", self.cfg_scale, 0.0)
        _choice("rollout.cfg_negative", self.cfg_negative, CFG_NEGATIVES)
        _above("rollout.temperature", self.temperature, 0.0)
        _at_least("rollout.top_k", self.top_k, 1)
        _above("rollout.top_p", self.top_p, 0.0)
        _choice("rollout.logprobs", self.logprobs, ROLLOUT_LOGPROBS)
        _choice("rollout.sampler", self.sampler, SAMPLERS)
        if self.top_p is not None and self.top_p > 1:
            raise ConfigError(f"rollout.top_p={self.top_p!r} must lie in (0, 1]")


class _AlgoSection:
    """The algorithm: a preset of t2i_gcpo.algos, with any of its fields overridden.

    The fields are AlgorithmPreset's (documented there, each once), all defaulting to null,
    meaning "the preset's value"; the resolved recipe is `resolve()`, an AlgorithmPreset
    (which checks the values).
    """

    def __post_init__(self) -> None:
        _choice("algo.preset", self.preset, tuple(PRESETS))
        try:
            self.resolve()
        except ValueError as err:
            raise ConfigError(f"algo (preset {self.preset!r} with overrides): {err}") from err

    def overrides(self) -> dict[str, Any]:
        """The fields set (not null), as AlgorithmPreset field -> value."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "preset" and getattr(self, f.name) is not None
        }

    def resolve(self) -> AlgorithmPreset:
        """The preset with the overrides applied (validated by AlgorithmPreset)."""
        return get_preset(self.preset).replace(**self.overrides())


def _algo_fields() -> list[tuple[str, Any, Any]]:
    """`preset`, then every AlgorithmPreset knob but its name, as optional overrides."""
    hints = typing.get_type_hints(AlgorithmPreset)
    preset_help = '"gcpo", "grpo" or "dapo" (see t2i_gcpo.algos.presets).'
    fields_ = [("preset", str, field(default="gcpo", metadata={"help": preset_help}))]
    for knob in dataclasses.fields(AlgorithmPreset):
        if knob.name != "name":
            optional = hints[knob.name] | None
            fields_.append((knob.name, optional, field(default=None, metadata=knob.metadata)))
    return fields_


AlgoConfig = dataclasses.make_dataclass(
    "AlgoConfig", _algo_fields(), bases=(_AlgoSection,), namespace={"__module__": __name__}
)
AlgoConfig.__doc__ = _AlgoSection.__doc__


@dataclass
class RewardsConfig:
    """The training reward: a weighted sum of reward models (reward_models.CombinedReward)."""

    models: list = field(
        default_factory=lambda: [{"name": "shapes-oracle", "kwargs": {"mode": "share"}}]
    )
    """Rewards as {name, weight, kwargs}; a bare name means weight 1. Names: built-ins
    ("clip", "aesthetic"), the shapes world's ("shapes-clip", "shapes-aesthetic",
    "shapes-oracle"), 'path/to/file.py:attr', 'package.module:attr' or an installed plug-in
    (see reward_models.registry). The default is the shapes world's GenEval-rule oracle (a
    verifiable reward, as in Flow-GRPO's GenEval task; measured in benchmarks/study.py, its tiny
    CLIP reward rises under training while the held-out GenEval score falls) in its "share"
    mode: the share of the prompt's requirements an image meets, partial credit where the strict
    verdict (mode "strict") gives most groups all zeros. Mode "flow_grpo" is the graded
    exact-count score Flow-GRPO itself trains on; as the default run's reward it lowered the
    held-out score (docs/results.md, section 4)."""
    on_nonfinite: str = "error"
    """A NaN / inf reward: "error" stops training; "drop" leaves that sample's group out of
    the step (counted in the metrics)."""

    def __post_init__(self) -> None:
        from reward_models.combine import RewardSpec

        if isinstance(self.models, str | Mapping):
            self.models = [self.models]
        if not self.models:
            raise ConfigError("rewards.models=[] must list at least one reward")
        normalised = []
        for i, entry in enumerate(self.models):
            try:
                spec = RewardSpec.from_config(entry)
            except ValueError as err:
                raise ConfigError(f"rewards.models[{i}]: {err}") from err
            normalised.append({"name": spec.name, "weight": spec.weight, "kwargs": spec.kwargs})
        self.models = normalised
        _choice("rewards.on_nonfinite", self.on_nonfinite, NONFINITE_POLICIES)


@dataclass
class OptimConfig:
    """The optimizer (AdamW), its learning-rate schedule and the update layout of a step."""

    lr: float = 1e-4
    """Peak learning rate. The default suits the shapes policy in the default run's 50 steps:
    at 2e-5 its per-token KL to the start was still 0.005 after 50 steps and the held-out
    GenEval score had moved 0.5 points (192 images); at 1e-4 the KL reaches about 0.1-0.2."""
    schedule: str = "cosine"
    """"constant", or "cosine" decay to min_lr_ratio * lr at the last step (after warmup)."""
    min_lr_ratio: float = 0.05
    """Final learning rate of the cosine schedule, as a fraction of lr."""
    warmup_steps: int = 0
    """Training steps of linear warmup from lr / warmup_steps to lr."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float | None = 1.0
    """Clip the global gradient norm to this (null: no clipping; the norm is still logged)."""
    grad_accumulation: int = 1
    """Minibatches whose gradients are accumulated into one optimizer update."""
    updates_per_rollout: int = 4
    """Passes (epochs) over each step's rollout. The default suits the default run, whose 50
    steps see each training prompt about once: with 4 passes and the oracle's partial credit
    (rewards.models' default) its held-out GenEval score rose on each of seeds 0-2, +7.9 +- 1.7
    points on the policy shipped since 2026-12-07 (+3.0 +- 1.0 on the one shipped before
    2026-12-06, against +0.1 +- 1.7 there with 1 pass and the strict verdict; docs/results.md,
    section 4). The reference recipe uses 1, as configs/janus-pro-*.yaml do."""
    minibatch_size: int | None = None
    """Samples per forward/backward pass on each process (null: the process's whole rollout).
    It must divide the process's rollout, prompts_per_step / processes * group_size."""
    steps: int = 50
    """Training steps; each samples one rollout and runs its updates (the default run's 50,
    with its two evaluations, take 152-173 s on 2 CPU cores: docs/results/default_run.txt)."""

    def __post_init__(self) -> None:
        _above("optim.lr", self.lr, 0.0)
        _choice("optim.schedule", self.schedule, SCHEDULES)
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"optim.min_lr_ratio={self.min_lr_ratio!r} must lie in [0, 1]")
        _at_least("optim.warmup_steps", self.warmup_steps, 0)
        _at_least("optim.weight_decay", self.weight_decay, 0.0)
        _above("optim.max_grad_norm", self.max_grad_norm, 0.0)
        _at_least("optim.grad_accumulation", self.grad_accumulation, 1)
        _at_least("optim.updates_per_rollout", self.updates_per_rollout, 1)
        _at_least("optim.minibatch_size", self.minibatch_size, 1)
        _at_least("optim.steps", self.steps, 1)


@dataclass
class ReferenceConfig:
    """The frozen reference policy of the KL term, loaded only when algo beta > 0."""

    name: str | None = None
    """Reference checkpoint (same forms as policy.name); null: policy.name, the starting
    point of training (also when resuming)."""
    dtype: str | None = None
    """Reference weights dtype ("float32" or "bfloat16"); null: policy.dtype."""

    def __post_init__(self) -> None:
        _non_empty("reference.name", self.name)
        if self.dtype is not None:
            _choice("reference.dtype", self.dtype, POLICY_DTYPES)


@dataclass
class LoggingConfig:
    """Where and how often the run reports."""

    output_dir: str | None = None
    """Folder of the run (config.yaml, metrics.jsonl, samples/, checkpoints/, tensorboard/);
    null: runs/<date-time> under the working directory."""
    log_every: int = 1
    """Steps between console lines and tracker logs (metrics.jsonl gets every step)."""
    sample_every: int = 25
    """Steps between sample image grids written to samples/ (0: never)."""
    eval_every: int = 50
    """Steps between evaluations on prompts.eval, and one after the last step (0: never)."""
    eval_at_start: bool = True
    """Also evaluate before the first step of a fresh run (logged as step 0)."""
    eval_samples_per_prompt: int = 4
    """Images per eval prompt."""
    eval_judge: str | None = "shapes-oracle"
    """A reward that judges each eval image (a reward_models.Judge, e.g. a GenEval-style
    oracle): its accuracy per prompt category and where the credit falls on the objects it
    found are reported; null: only the training reward's mean on the eval prompts."""
    eval_negatives: list = field(default_factory=lambda: ["null", "attribute"])
    """The negatives the eval's credit figures are measured against: "null", "caption",
    "attribute" (one class, colour or count changed) and "position" (the relation changed);
    see t2i_gcpo.evaluation."""
    heatmap_every: int = 25
    """Steps between credit overlays of the probe prompt, written to heatmaps/ and the
    trackers (0: never); also logged at step 0 of a fresh run."""
    probe_prompt: str | None = None
    """The prompt whose credit is drawn; null: the first eval prompt (else the first
    training prompt). Its negative follows algo.negative."""
    probe_samples: int = 4
    """Images in the probe's group."""
    trackers: str = "tensorboard"
    """Experiment tracker through accelerate: "tensorboard", "wandb" or "none"."""
    progress_bar: bool = True
    """Show a tqdm progress bar (main process only)."""

    def __post_init__(self) -> None:
        _non_empty("logging.output_dir", self.output_dir)
        _at_least("logging.log_every", self.log_every, 1)
        _at_least("logging.sample_every", self.sample_every, 0)
        _at_least("logging.eval_every", self.eval_every, 0)
        _at_least("logging.eval_samples_per_prompt", self.eval_samples_per_prompt, 1)
        _non_empty("logging.eval_judge", self.eval_judge)
        for view in self.eval_negatives:
            _choice("logging.eval_negatives[]", view, tuple(NEGATIVE_VIEWS))
        _at_least("logging.heatmap_every", self.heatmap_every, 0)
        _non_empty("logging.probe_prompt", self.probe_prompt)
        _at_least("logging.probe_samples", self.probe_samples, 1)
        _choice("logging.trackers", self.trackers, TRACKERS)


@dataclass
class CheckpointConfig:
    """Training checkpoints under output_dir/checkpoints/step_NNNNNN/."""

    every: int = 50
    """Steps between checkpoints (0: only the final one); the last step is always saved."""
    keep_last: int = 2
    """How many of the newest checkpoints to keep."""

    def __post_init__(self) -> None:
        _at_least("checkpoint.every", self.every, 0)
        _at_least("checkpoint.keep_last", self.keep_last, 1)


@dataclass
class TrainConfig:
    """Everything a training run needs; `t2i-gcpo train --print-config` shows the defaults."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The model being trained."""
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    """Training and evaluation prompts."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Sampling of each step's images."""
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    """GCPO, GRPO or DAPO, with overrides."""
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    """The training reward."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer, schedule and update layout."""
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    """The KL reference policy."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    """Outputs, metrics, samples and evaluation."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoint frequency and retention."""
    seed: int = 0
    """Seed of the prompt order, the sampling and the swapped captions."""

    def __post_init__(self) -> None:
        _at_least("seed", self.seed, 0)

    @property
    def preset(self) -> AlgorithmPreset:
        """The resolved algorithm recipe."""
        return self.algo.resolve()

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML-safe)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The config as YAML, sections in declaration order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SECTIONS: dict[str, type] = {
    f.name: f.default_factory for f in dataclasses.fields(TrainConfig) if f.name != "seed"
}
"""Section name -> its dataclass."""


def check_layout(config: TrainConfig, num_processes: int) -> None:
    """Raise ConfigError unless the step's samples split into processes and minibatches evenly."""
    rollout, optim = config.rollout, config.optim
    if rollout.prompts_per_step % num_processes:
        raise ConfigError(
            f"rollout.prompts_per_step={rollout.prompts_per_step} must be a multiple of the "
            f"number of processes ({num_processes}); groups are never split across processes"
        )
    local = rollout.prompts_per_step // num_processes * rollout.group_size
    minibatch = optim.minibatch_size or local
    if local % minibatch:
        raise ConfigError(
            f"optim.minibatch_size={optim.minibatch_size} must divide each process's rollout of "
            f"{local} samples (prompts_per_step / processes * group_size)"
        )
    if (local // minibatch) % optim.grad_accumulation:
        raise ConfigError(
            f"optim.grad_accumulation={optim.grad_accumulation} must divide the "
            f"{local // minibatch} minibatches of each process's rollout ({local} samples / "
            f"minibatch_size {minibatch})"
        )


# ---------------------------------------------------------------------------------------------
# From dicts, files and overrides
# ---------------------------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    """'int', 'float or null', ... for error messages."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    return getattr(annotation, "__name__", str(annotation))


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """`value` checked against a field's type (ints pass as floats); ConfigError otherwise."""
    options = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                try:
                    return _coerce(name, value, option)
                except ConfigError:
                    continue
    elif annotation is str and value is None:
        return "null"  # YAML reads `null` as None; a text field that cannot be None means "null"
    elif isinstance(value, bool) and annotation in (int, float):
        pass  # YAML's true / false are not numbers here
    elif annotation is float and isinstance(value, int | float | str):
        return _finite_float(name, value)
    elif annotation in (int, bool, str) and isinstance(value, annotation):
        return value
    elif annotation is list:
        return value  # a list field checks its own entries
    elif annotation is dict and isinstance(value, Mapping):
        return dict(value)  # a mapping field checks its own entries
    raise ConfigError(f"{name}={value!r} has the wrong type; expected {_type_name(annotation)}")


def _finite_float(name: str, value: int | float | str) -> float:
    """A number, or a string such as '1e-4' (which YAML 1.1 leaves a string), as a finite float."""
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} has the wrong type; expected a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"{name}={value!r} must be a finite number")
    return number


def _unknown_key(where: str, key: str, valid: Sequence[str]) -> ConfigError:
    """The error for a key that `where` does not have, with the valid keys and a guess."""
    guess = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return ConfigError(f"unknown key {key!r} in {where}{hint}; valid keys: {', '.join(valid)}")


def _build_section(name: str, cls: type, raw: Any) -> Any:
    """A section dataclass from its mapping of fields."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"section {name!r} must be a mapping of its fields, got {raw!r}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in hints:
            raise _unknown_key(f"section {name!r}", str(key), valid)
        values[key] = _coerce(f"{name}.{key}", value, hints[key])
    return cls(**values)


def build_config(raw: Mapping[str, Any]) -> TrainConfig:
    """A validated TrainConfig from a nested mapping (missing keys keep their defaults)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    valid = [*SECTIONS, "seed"]
    sections = {}
    for key, value in raw.items():
        if key == "seed":
            sections["seed"] = _coerce("seed", value, int)
        elif key in SECTIONS:
            sections[key] = _build_section(key, SECTIONS[key], value or {})
        else:
            raise _unknown_key("the config", str(key), valid)
    return TrainConfig(**sections)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` laid over `base`, section by section (fields of a section merge; lists replace)."""
    merged = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in base.items()
    }
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping; ConfigError naming the file when it cannot."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {raw!r}")
    return dict(raw)


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """['--section.field', 'VALUE', '--seed=3', ...] -> nested mapping; VALUE read as YAML.

    YAML makes "0.28" a float, "true" a bool, "null" None and "[1, 2]" a list; anything else
    stays a string. Keys are checked later by build_config.
    """
    overrides: dict[str, Any] = {}
    items = list(args)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--") or len(flag) == 2:
            raise ConfigError(
                f"unexpected argument {flag!r}; overrides look like --section.field VALUE"
            )
        key, has_value, text = flag[2:].partition("=")
        if not has_value:
            if not items or (items[0].startswith("--") and len(items[0]) > 2):
                raise ConfigError(f"option --{key} needs a value (--{key} VALUE)")
            text = items.pop(0)
        _set_override(overrides, key, text)
    return overrides


def _set_override(overrides: dict[str, Any], key: str, text: str) -> None:
    """Store one `section.field` (or `seed`) override, its text read as YAML."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    if parts[0] not in SECTIONS and parts[0] != "seed":
        raise _unknown_key("the config", parts[0], [*SECTIONS, "seed"])
    if parts[0] == "seed" and len(parts) == 1:
        overrides["seed"] = value
    elif len(parts) == 2 and parts[0] in SECTIONS:
        overrides.setdefault(parts[0], {})[parts[1]] = value
    else:
        fields_ = [f.name for f in dataclasses.fields(SECTIONS.get(parts[0], TrainConfig))]
        raise ConfigError(
            f"option --{key}: expected --{parts[0]}.FIELD with FIELD one of {', '.join(fields_)}"
            if parts[0] in SECTIONS
            else f"option --{key}: seed takes no field (--seed N)"
        )


RUN_CONFIG_FILE = "config.yaml"
"""Name of the resolved config that a run saves in its output_dir."""


def layered_config(
    config_file: str | Path | None, override_args: Sequence[str], resume: bool = False
) -> TrainConfig:
    """Defaults <- the run's saved config.yaml (resume only) <- config_file <- overrides."""
    raw = merge(
        load_config_file(config_file) if config_file else {}, parse_overrides(override_args)
    )
    if resume:
        output_dir = (raw.get("logging") or {}).get("output_dir")
        if not output_dir:
            raise ConfigError(
                "--resume needs logging.output_dir, the folder of the run to continue "
                "(--logging.output_dir DIR or in the --config file)"
            )
        saved = Path(output_dir) / RUN_CONFIG_FILE
        if saved.is_file():
            raw = merge(load_config_file(saved), raw)
    return build_config(raw)
