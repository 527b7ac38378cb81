"""The training loop of GCPO, GRPO and DAPO: orchestration only.

One step: draw prompts -> sample a group of images per prompt (the rollout records both CFG
branches' log-probs) -> decode -> rewards -> group advantages (and DAPO's filter) -> token
credit (GCPO) -> clipped policy-gradient updates. The maths lives in t2i_gcpo.algos, the model
in t2i_gcpo.policies, the rewards in reward_models; this module calls them in order, and logs,
evaluates and checkpoints.

Distribution (accelerate): `rollout.prompts_per_step` is global; each process samples, scores
and computes advantages for its own share of whole groups; gradients are averaged by DDP and
logged metrics are gathered from every process.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator, PartialState
from accelerate.utils import (
    DistributedDataParallelKwargs,
    broadcast_object_list,
    gather_object,
    is_wandb_available,
    parse_flag_from_env,
)
from tqdm.auto import tqdm

from reward_models import Judge, RewardError, load_reward
from reward_models.combine import CombinedReward, RewardResult
from t2i_gcpo import checkpoint as ckpt
from t2i_gcpo.algos import credit_preset, group_advantages, informative_groups, policy_loss
from t2i_gcpo.config import RUN_CONFIG_FILE, ConfigError, TrainConfig, check_layout
from t2i_gcpo.data import PromptOrder, PromptRecord, resolve_negatives, resolve_prompts
from t2i_gcpo.data.negatives import prompts_vocabulary
from t2i_gcpo.evaluation import evaluate_policy
from t2i_gcpo.files import write_text_atomic
from t2i_gcpo.logging_utils import (
    MetricsLog,
    StageTimer,
    StatsAccumulator,
    combine_stats,
    drop_records_after,
    flat_hparams,
    format_line,
    save_sample_grid,
    short_names,
)
from t2i_gcpo.optim import advance_schedule, build_optimizer, build_scheduler
from t2i_gcpo.policies import (
    JanusPolicy,
    Policy,
    Rollout,
    guided_logprobs,
    load_policy,
    negative_logprobs,
    teacher_forced_logprobs,
)
from t2i_gcpo.policies.lora import AdaptersOff, add_adapters, make_adapters_trainable
from t2i_gcpo.viz.figures import figure_array, group_figure, save_figure
from t2i_gcpo.viz.probe import probe_credit

CONSOLE_KEYS = (
    "reward/mean",
    "loss",
    "policy/kl_mean",
    "policy/clip_fraction",
    "rollout/entropy",
    "lr",
    "eval/oracle/all",
    "eval/reward/mean",
)
RATIO_WARNING = 1e-2
"""Warn when a rollout's recorded log-probs differ from the teacher-forced ones by more."""
INPUT_ERRORS = (RewardError, FloatingPointError)
"""Errors met during training that stop the run with a message and its last checkpoint: a
reward that raises or returns non-finite or malformed values, or a non-finite loss."""


class TrainingStopped(Exception):
    """Training stopped on an error in its input after `step` completed steps; the message
    says what went wrong, where, and which checkpoint `--resume` continues from."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


# ---------------------------------------------------------------------------------------------
# Data of one step
# ---------------------------------------------------------------------------------------------


@dataclass
class StepBatch:
    """One process's training samples of a step: N samples of T image tokens each.

    prompts (N,) positive prompts; tokens (N, T); old_logp (N, T) the sampling policy's
    log-probs of the tokens (see rollout.logprobs); advantages (N,); mask (N, T) bool, False on
    dropped groups; credit (N, T) token weights or None (uniform); ref_logp (N, T) or None (no
    KL); negatives (N,) the negative caption CFG sampled each against, or None (null prompt).
    """

    prompts: list[str]
    tokens: torch.Tensor
    old_logp: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    credit: torch.Tensor | None
    ref_logp: torch.Tensor | None
    negatives: list[str] | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def minibatches(self, size: int) -> Iterator[StepBatch]:
        """Consecutive slices of `size` samples."""
        for start in range(0, len(self), size):
            part = slice(start, start + size)
            yield StepBatch(
                self.prompts[part],
                self.tokens[part],
                self.old_logp[part],
                self.advantages[part],
                self.mask[part],
                None if self.credit is None else self.credit[part],
                None if self.ref_logp is None else self.ref_logp[part],
                None if self.negatives is None else self.negatives[part],
            )


class TeacherForcedLogprobs(torch.nn.Module):
    """policy.token_logprobs as a module over policy.model, so that DDP sees its forward
    (calling the model's parts directly would skip DDP's gradient synchronisation). With
    `guidance` (cfg_scale, temperature) it scores the guided distribution instead
    (policy.guided_logprobs, rollout.logprobs "guided")."""

    def __init__(self, policy: Policy, guidance: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.model = policy.model
        self.policy = policy
        self.guidance = guidance

    def forward(
        self, prompts: list[str], tokens: torch.Tensor, negatives: list[str] | None = None
    ) -> torch.Tensor:
        """prompts (N,), tokens (N, T) -> log-probs (N, T), differentiable."""
        if self.guidance is None:
            return self.policy.token_logprobs(prompts, tokens)
        return self.policy.guided_logprobs(prompts, tokens, negatives, *self.guidance)


# ---------------------------------------------------------------------------------------------
# Setup helpers
# ---------------------------------------------------------------------------------------------


def load_training_prompts(config: TrainConfig) -> list[PromptRecord]:
    """The training records, checked against algo.negative: every record must be one its mode
    can serve (resolved once here, so that a bad record stops the run before it starts)."""
    records = resolve_prompts(config.prompts.train)
    source = f"prompts.train={config.prompts.train}"
    resolve_negatives(records, config.preset.negative, config.seed, source=source)
    return records


def load_judge(config: TrainConfig) -> Judge | None:
    """The reward named by logging.eval_judge (which must be a reward_models.Judge), or None
    when it is null or there are no eval prompts."""
    name = config.logging.eval_judge
    if name is None or config.prompts.eval is None:
        return None
    judge = load_reward(name)
    if not isinstance(judge, Judge):
        raise ConfigError(
            f"logging.eval_judge={name!r} is a reward without a judge() method; name a judge "
            "(e.g. 'shapes-oracle') or set it to null"
        )
    return judge


def shared_output_dir(output_dir: str | None, state: PartialState) -> Path:
    """logging.output_dir, or runs/<date-time> chosen by the main process for all of them."""
    if output_dir is not None:
        return Path(output_dir)
    stamp = [datetime.now().strftime("%Y%m%d-%H%M%S")]
    if state.num_processes > 1:
        broadcast_object_list(stamp, from_process=0)
    return Path("runs") / stamp[0]


def check_tracker(tracker: str) -> None:
    """Raise ConfigError when the tracker's package is not installed."""
    if tracker == "wandb" and not is_wandb_available():
        raise ConfigError("logging.trackers='wandb' needs the wandb package (pip install wandb)")


def process_state(config: TrainConfig) -> PartialState:
    """The distributed state the run was launched with (CPU-only when asked).

    Raises ConfigError when a launcher started several processes that accelerate cannot join
    (on a machine without GPUs unless policy.device is "cpu"): they would each run alone and
    overwrite one another's files.
    """
    # PartialState, unlike Accelerator, ignores ACCELERATE_USE_CPU: read it here too.
    cpu = config.policy.device == "cpu" or parse_flag_from_env("ACCELERATE_USE_CPU")
    state = PartialState(cpu=cpu)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and state.num_processes == 1:
        raise ConfigError(
            f"the launcher started {launched} processes (WORLD_SIZE) but accelerate found no "
            f"device to run them together (policy.device={config.policy.device!r}); on CPUs "
            "pass --policy.device cpu"
        )
    return state


def has_unused_parameters(policy: Policy) -> bool:
    """True when a trainable parameter gets no gradient from token_logprobs (e.g. a text head),
    found with one backward pass of a blank image; DDP must then look for them every step."""
    tokens = torch.zeros(1, policy.num_tokens, dtype=torch.long, device=policy.device)
    policy.token_logprobs(["a"], tokens).sum().backward()
    parameters = policy.trainable_parameters()
    unused = any(parameter.grad is None for parameter in parameters)
    for parameter in parameters:
        parameter.grad = None
    return unused


def make_accelerator(config: TrainConfig, output_dir: Path, policy: Policy) -> Accelerator:
    """The Accelerator of the run: trackers, gradient accumulation, DDP options."""
    trackers = config.logging.trackers
    search_unused = PartialState().num_processes > 1 and has_unused_parameters(policy)
    return Accelerator(
        cpu=PartialState().device.type == "cpu",
        log_with=None if trackers == "none" else trackers,
        project_dir=str(output_dir),
        gradient_accumulation_steps=config.optim.grad_accumulation,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=search_unused)],
    )


def check_output_dir(output_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (None for a fresh run); refuse to overwrite a run."""
    latest = ckpt.latest_checkpoint(output_dir)
    if resume and latest is None:
        raise ConfigError(
            f"--resume: logging.output_dir={str(output_dir)!r} holds no complete checkpoint "
            f"(looked for {ckpt.checkpoints_root(output_dir)}/step_NNNNNN)"
        )
    if not resume and (latest is not None or (output_dir / "metrics.jsonl").exists()):
        raise ConfigError(
            f"logging.output_dir={str(output_dir)!r} already holds a run; pass --resume to "
            "continue it, or choose another output_dir"
        )
    return latest if resume else None


def load_trainable_policy(name: str, config: TrainConfig, device: torch.device) -> Policy:
    """The policy to train: loaded (float32 weights for mixed precision; a LoRA base in the
    compute dtype), with LoRA adapters when asked for (a checkpoint brings its own), and
    gradient checkpointing."""
    lora = config.policy.lora
    dtype = config.policy.dtype if lora else "float32"
    policy = load_policy(name, dtype=dtype, device=device)
    if lora is not None:
        if not isinstance(policy, JanusPolicy):
            raise ConfigError("policy.lora is supported for Janus policies")
        if policy.adapter is None:
            policy = add_adapters(policy, base=config.policy.name, **lora)
        else:  # a LoRA checkpoint: its adapters go on training
            make_adapters_trainable(policy)
    if config.policy.gradient_checkpointing:
        if not isinstance(policy, JanusPolicy):
            raise ConfigError("policy.gradient_checkpointing=true is supported for Janus policies")
        policy.enable_gradient_checkpointing()
    if config.policy.dtype == "bfloat16" and lora is None:  # float32 master weights
        if not isinstance(policy, JanusPolicy):
            raise ConfigError("policy.dtype=bfloat16 is supported for Janus policies")
        policy.compute_dtype = torch.bfloat16
    return policy


def load_reference(config: TrainConfig, policy: Policy, device: torch.device) -> Policy | None:
    """The frozen reference policy when the KL weight is positive, else None: the policy with
    its adapters off for a LoRA run (no second copy), else reference.name (default:
    policy.name, the starting point) loaded once more."""
    if config.preset.beta <= 0:
        return None
    if getattr(policy, "adapter", None) is not None and config.reference.name is None:
        return AdaptersOff(policy)
    name = config.reference.name or config.policy.name
    reference = load_policy(
        name, dtype=config.reference.dtype or config.policy.dtype, device=device
    )
    for parameter in reference.trainable_parameters():
        parameter.requires_grad_(False)
    return reference.eval()


@contextmanager
def stop_signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Route SIGINT and SIGTERM to `on_signal(name)` inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:
        signal.signal(sig, lambda number, _frame: on_signal(signal.Signals(number).name))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def rollout_metrics(gathered: dict[str, torch.Tensor], group_size: int) -> dict[str, float]:
    """Reward statistics of the step over all processes' samples (gathered tensors (N,))."""
    total, valid, keep = gathered["total"], gathered["valid"], gathered["keep"]
    groups = total.view(-1, group_size)
    metrics = {
        "samples": int(total.numel()),
        "samples/kept": int(keep.sum()),
        "samples/nonfinite_reward": int((~valid).sum()),
        "reward/mean": total[valid].mean().item(),
        "reward/std": total[valid].std().item() if int(valid.sum()) > 1 else 0.0,
        "reward/group_std": groups.std(dim=1).mean().item(),
    }
    if "entropy" in gathered:  # of the positive branch's next-token distributions
        metrics["rollout/entropy"] = gathered["entropy"].mean().item()
    for key, values in gathered.items():
        if key.startswith("reward/"):
            metrics[f"{key}/mean"] = values[valid].float().mean().item()
    return metrics


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


class Trainer:
    """Trains `config.policy` with `config.algo` on `config.prompts.train`; see module doc.

    Construction checks every input (prompts, negatives, rewards, the policy path, the batch
    layout, the output folder) before any training starts, and loads the models. `train()`
    runs the steps; SIGINT / SIGTERM finish the current step, save a checkpoint and return.
    """

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.config, self.preset = config, config.preset
        self.records = load_training_prompts(config)
        self.vocab = prompts_vocabulary(self.records)
        self.eval_records = resolve_prompts(config.prompts.eval) if config.prompts.eval else []
        self.probe, self.probe_negatives = self.probe_record(), None
        if config.logging.heatmap_every:  # a probe that its negative cannot serve is an error
            self.probe_negatives = resolve_negatives(
                [self.probe],
                credit_preset(self.preset).negative,
                config.seed,
                source=f"logging.probe_prompt={self.probe.prompt!r}",
                vocab=prompts_vocabulary([*self.records, *self.eval_records]),
            )
        self.reward = CombinedReward(
            config.rewards.models, on_nonfinite=config.rewards.on_nonfinite
        )
        self.judge = load_judge(config)
        check_tracker(config.logging.trackers)
        state = process_state(config)
        if config.policy.cpu_threads is not None:
            torch.set_num_threads(config.policy.cpu_threads)
        check_layout(config, state.num_processes)
        self.output_dir = shared_output_dir(config.logging.output_dir, state)
        resume_from = check_output_dir(self.output_dir, resume)
        torch.manual_seed(config.seed)
        policy_name = str(resume_from / ckpt.POLICY_DIR) if resume_from else config.policy.name
        self.policy = load_trainable_policy(policy_name, config, state.device)
        if isinstance(self.policy, JanusPolicy):
            self.policy.sampler = config.rollout.sampler
        self.cfg_scale = config.rollout.cfg_scale
        if self.cfg_scale is None:
            self.cfg_scale = self.policy.default_cfg_scale
        self.reference = load_reference(config, self.policy, state.device)
        self.accelerator = make_accelerator(config, self.output_dir, self.policy)
        optimizer = build_optimizer(self.policy.trainable_parameters(), config.optim)
        self.scheduler = build_scheduler(optimizer, config.optim)
        self.guidance = None
        if config.rollout.logprobs == "guided":
            self.guidance = (self.cfg_scale, config.rollout.temperature)
        self.module, self.optimizer = self.accelerator.prepare(
            TeacherForcedLogprobs(self.policy, self.guidance), optimizer
        )
        self.order = PromptOrder(len(self.records), config.seed)
        rank = self.accelerator.process_index
        self.generator = torch.Generator(self.policy.device).manual_seed(
            config.seed * 10_000 + rank
        )
        self.step, self.stop_reason, self._warned_ratio = 0, None, False
        self.step_start: dict | None = None  # RNG and prompt order before the current step
        self.step_updated = False  # the current step has changed the parameters
        if resume_from is not None:
            self.restore(resume_from)
        self.metrics = MetricsLog(
            self.output_dir / "metrics.jsonl", keep_until_step=self.step if resume else None
        )
        if resume and self.is_main:
            drop_records_after(self.output_dir / "negatives.jsonl", self.step)
        self.start_run(resumed=resume_from is not None)

    # -- properties ------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and logs."""
        return self.accelerator.is_main_process

    @property
    def prompts_per_process(self) -> int:
        """This process's share of rollout.prompts_per_step."""
        return self.config.rollout.prompts_per_step // self.accelerator.num_processes

    @property
    def sampling_negative(self) -> str:
        """The negative branch CFG samples with: "null" or algo.negative's captions."""
        if self.config.rollout.cfg_negative == "null":
            return "null"
        return self.preset.negative

    # -- one step, stage by stage ------------------------------------------------------------

    def draw_prompts(self) -> list[int]:
        """Indices of this process's prompts of the step (a slice of the global draw)."""
        indices = self.order.take(self.config.rollout.prompts_per_step)
        start = self.accelerator.process_index * self.prompts_per_process
        return indices[start : start + self.prompts_per_process]

    def step_negatives(self, indices: list[int], draw: int = 0) -> list[str] | None:
        """The credit's negative captions for the prompts `indices` at this step (None: the
        null prompt): each record's caption ("caption"), or for "swap" and "attribute" a
        caption drawn anew each step (`draw` numbers the further ones of negative_count),
        seeded by the run's seed, the step and the draw."""
        mode = self.preset.negative
        records = [self.records[i] for i in indices]
        seed = self.config.seed * 1_000_003 + self.step * 7_919 + draw * 104_729
        return resolve_negatives(records, mode, seed, vocab=self.vocab)

    def sample(self, indices: list[int]) -> Rollout:
        """A group of rollout.group_size images per prompt, with both branches' log-probs."""
        rollout = self.config.rollout
        negatives = None
        if self.sampling_negative != "null":
            negatives = self.step_negatives(indices)
        return self.policy.sample(
            [self.records[i].prompt for i in indices],
            negative_prompts=negatives,
            samples_per_prompt=rollout.group_size,
            cfg_scale=self.cfg_scale,
            temperature=rollout.temperature,
            top_k=rollout.top_k,
            top_p=rollout.top_p,
            generator=self.generator,
        )

    def sample_and_score(self, indices: list[int], timer: StageTimer) -> tuple:
        """Sample the prompts `indices` and score the images: (indices, rollout, images,
        rewards)."""
        with timer("sample"):
            rollout = self.sample(indices)
        with timer("reward"):
            images = self.policy.decode(rollout.tokens)
            result = self.score(images, rollout, indices)
        return indices, rollout, images, result

    def informative_count(self, result: RewardResult) -> int:
        """How many of this process's groups carry a signal (finite rewards that vary)."""
        size = self.config.rollout.group_size
        return int(self.advantages(result)[1].view(-1, size)[:, 0].sum())

    def refill(self, draw: tuple, timer: StageTimer) -> tuple[tuple, int]:
        """DAPO's dynamic sampling: while a process has fewer informative groups than its
        share of prompts, every process draws the step's next prompts (so that the prompt
        order stays the same everywhere) and the short ones sample and score them; at most
        preset.refill_rounds rounds. Returns the grown draw and the rounds run."""
        rounds = 0
        while rounds < self.preset.refill_rounds:
            short = self.informative_count(draw[3]) < self.prompts_per_process
            flag = torch.tensor(float(short), device=self.accelerator.device)
            if self.accelerator.reduce(flag, "max").item() == 0:
                break
            indices = self.draw_prompts()
            rounds += 1
            if not short:
                self.raise_together(None)  # the collective the others' scoring joins
                continue
            more = self.sample_and_score(indices, timer)
            draw = (
                draw[0] + more[0],
                Rollout.concat([draw[1], more[1]]),
                torch.cat([draw[2], more[2]]),
                RewardResult.concat([draw[3], more[3]]),
            )
        return draw, rounds

    def fill_batch(self, draw: tuple) -> tuple:
        """The step's batch from a refilled draw: the informative groups first (in the order
        drawn), then others (which the loss masks) up to this process's share of prompts, so
        that the update's layout is that of every step."""
        indices, rollout, images, result = draw
        size = self.config.rollout.group_size
        informative = self.advantages(result)[1].view(-1, size)[:, 0].tolist()
        order = [g for g, ok in enumerate(informative) if ok]
        order += [g for g, ok in enumerate(informative) if not ok]
        chosen = order[: self.prompts_per_process]
        rows = torch.cat([torch.arange(g * size, (g + 1) * size) for g in chosen])
        return (
            [indices[g] for g in chosen],
            rollout.prompt_subset(chosen),
            images[rows.to(images.device)],
            result.subset(rows.to(result.total.device)),
        )

    def score(self, images: torch.Tensor, rollout: Rollout, indices: list[int]) -> RewardResult:
        """Rewards of the decoded images (N, 3, H, W) against their prompts and metadata; a
        reward error on any process raises on every process."""
        metadata = [self.records[indices[i]].metadata for i in rollout.prompt_index.tolist()]
        error = None
        try:
            result = self.reward(images, rollout.sample_prompts, metadata)
        except RewardError as err:
            error = err
        self.raise_together(error)
        return result

    def raise_together(self, error: Exception | None) -> None:
        """Raise `error` on this process, and a RewardError on the others, when any process
        met one (so that no process waits forever for the others in a collective)."""
        flag = torch.tensor(float(error is not None), device=self.accelerator.device)
        if self.accelerator.reduce(flag, "max").item() > 0:
            raise error or RewardError("another process stopped on an error (see its message)")

    def advantages(self, result: RewardResult) -> tuple[torch.Tensor, torch.Tensor]:
        """-> advantages (N,), keep (N,) bool: groups with a non-finite reward are dropped, and
        with dynamic sampling the groups without reward spread; advantages over kept groups."""
        size, preset = self.config.rollout.group_size, self.preset
        keep = result.valid.view(-1, size).all(dim=1).repeat_interleave(size)
        if preset.dynamic_sampling:
            keep &= informative_groups(result.total, size, preset.min_group_std)
        advantages = torch.zeros_like(result.total)
        if keep.any():
            advantages[keep] = group_advantages(
                result.total[keep], size, preset.advantage_scale, preset.advantage_eps
            )
        return advantages, keep

    def credit(self, rollout: Rollout, indices: list[int]) -> torch.Tensor | None:
        """GCPO token credit (N, T) from the positive/negative contrast; None when uniform.
        The policy has not changed since it sampled the rollout, so a recorded CFG branch that
        is the credit's negative is reused (see policies.negative_logprobs)."""
        preset = self.preset
        if not preset.uses_credit:
            return None
        size = self.minibatch_size(rollout.num_samples)
        logp_neg = [
            negative_logprobs(self.policy, rollout, self.step_negatives(indices, draw), size)
            for draw in range(preset.negative_count)
        ]
        return preset.token_credit(rollout.logp_pos, logp_neg)[1]

    def log_negatives(self, indices: list[int]) -> None:
        """Append a sample of the step's (prompt, negative) pairs to negatives.jsonl (main)."""
        if self.preset.negative == "null" or not self.is_main:
            return
        shown = indices[:4]
        pairs = [
            [self.records[i].prompt, *[self.step_negatives(shown, d)[k]
                                       for d in range(self.preset.negative_count)]]
            for k, i in enumerate(shown)
        ]  # fmt: skip
        with (self.output_dir / "negatives.jsonl").open("a", encoding="utf-8") as handle:
            # numbered like the step's metrics.jsonl line (self.step counts finished steps)
            handle.write(json.dumps({"step": self.step + 1, "pairs": pairs}) + "\n")

    def build_batch(self, rollout: Rollout, indices, advantages, keep) -> StepBatch:
        """Everything the loss needs for this process's samples: with rollout.logprobs
        "guided", the sampling distribution's recorded log-probs and the reference's (one
        no-grad teacher-forced pass per branch), else the recorded positive branch and the
        reference's positive branch."""
        size = self.minibatch_size(rollout.num_samples)
        old_logp, ref_logp = rollout.logp_pos, None
        if self.guidance is not None:  # a policy that does not record them: score them
            old_logp = rollout.logp_guided
            if old_logp is None:
                old_logp = guided_logprobs(self.policy, rollout, self.guidance[1], size)
        if self.reference is not None and self.guidance is not None:
            ref_logp = guided_logprobs(self.reference, rollout, self.guidance[1], size)
        elif self.reference is not None:
            ref_logp = teacher_forced_logprobs(self.reference, rollout, None, size)
        return StepBatch(
            prompts=rollout.sample_prompts,
            tokens=rollout.tokens,
            old_logp=old_logp,
            advantages=advantages,
            mask=keep[:, None].expand_as(rollout.tokens).contiguous(),
            credit=self.credit(rollout, indices),
            ref_logp=ref_logp,
            negatives=rollout.sample_negatives,
        )

    def minibatch_size(self, local_samples: int) -> int:
        """optim.minibatch_size, or the whole local rollout."""
        return self.config.optim.minibatch_size or local_samples

    def update(self, batch: StepBatch) -> dict[str, float]:
        """optim.updates_per_rollout passes over the batch in minibatches; returns statistics
        gathered from every process."""
        stats, updated = StatsAccumulator(), False
        self.policy.train()
        for _ in range(self.config.optim.updates_per_rollout):
            for part in batch.minibatches(self.minibatch_size(len(batch))):
                with self.accelerator.accumulate(self.module):
                    updated |= self.minibatch_update(part, stats, first_update=not updated)
        self.policy.eval()
        return combine_stats(gather_object([stats.as_dict()]))

    def minibatch_update(
        self, part: StepBatch, stats: StatsAccumulator, first_update: bool
    ) -> bool:
        """Loss and backward of one minibatch, then the optimizer update when accelerate's
        accumulation is complete; returns whether the parameters were updated."""
        preset = self.preset
        logp = self.module(part.prompts, part.tokens, part.negatives)
        loss, loss_stats = policy_loss(
            logp, part.old_logp, part.advantages, part.mask, part.credit,
            preset.clip_low, preset.clip_high, preset.aggregation,
            part.ref_logp, preset.beta, preset.kl_relax,
        )  # fmt: skip
        error = None
        if not torch.isfinite(loss):
            error = FloatingPointError(
                f"the loss is {loss.item()} (the policy's log-probs or the rewards diverged; "
                "a lower optim.lr or a smaller clip range may help)"
            )
        self.raise_together(error)
        self.accelerator.backward(loss)
        stats.add({"loss": loss.item()})
        stats.add(loss_stats, prefix="policy/")
        if first_update and part.mask.any():  # the policy is still the one that sampled
            drift = (logp.detach() - part.old_logp)[part.mask].abs().max().item()
            stats.add({"update/first_logratio_abs_max": drift})
        synced = self.accelerator.sync_gradients
        if synced:
            stats.add({"grad_norm": self.clip_gradients()})
            self.step_updated = True
        self.optimizer.step()  # accelerate skips these until the accumulation is complete
        self.optimizer.zero_grad()
        return synced

    def clip_gradients(self) -> float:
        """Clip the gradient norm to optim.max_grad_norm (if set); return the norm before."""
        limit = self.config.optim.max_grad_norm or math.inf
        return float(self.accelerator.clip_grad_norm_(self.policy.trainable_parameters(), limit))

    def gather_rewards(self, result: RewardResult, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rewards, validity, kept flags and each reward of all processes, (N_all,) each."""
        local = {"total": result.total, "valid": result.valid, "keep": keep}
        names = short_names(list(result.per_reward))
        local.update({f"reward/{names[k]}": v for k, v in result.per_reward.items()})
        return {key: self.accelerator.gather(value.contiguous()) for key, value in local.items()}

    def train_step(self) -> dict[str, float]:
        """One training step (all stages); returns the step's metrics."""
        timer, group_size = StageTimer(), self.config.rollout.group_size
        self.step_start = {"rng": self.rng_state(), "order": self.order.state_dict()}
        self.step_updated = False
        indices = self.draw_prompts()
        draw = self.sample_and_score(indices, timer)
        rounds = 0
        if self.preset.dynamic_sampling and self.preset.refill_rounds:
            draw, rounds = self.refill(draw, timer)
        indices, rollout, images, result = draw
        gathered = self.gather_rewards(result, self.advantages(result)[1])
        if rollout.entropy is not None:
            gathered["entropy"] = self.accelerator.gather(rollout.entropy.mean(dim=1))
        metrics = rollout_metrics(gathered, group_size)  # over every sample drawn
        metrics["samples/drawn"], metrics["refill/rounds"] = metrics["samples"], rounds
        if rounds:
            indices, rollout, images, result = self.fill_batch(draw)
        advantages, keep = self.advantages(result)
        metrics["samples/kept"] = int(self.accelerator.gather(keep).sum())
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        metrics["update/skipped"] = int(not gathered["keep"].any())
        if not metrics["update/skipped"]:
            self.log_negatives(indices)
            with timer("credit"):
                batch = self.build_batch(rollout, indices, advantages, keep)
            with timer("update"):
                metrics.update(self.update(batch))
        advance_schedule(self.scheduler)
        self.step += 1
        self.check_first_update(metrics)
        if self.due(self.config.logging.sample_every) and self.is_main:
            self.write_samples(images, rollout, result)
        metrics.update(timer.as_dict())
        metrics["epoch"] = self.order.epoch
        self.step_start = None
        return metrics

    # -- around the steps ------------------------------------------------------------------

    def due(self, every: int) -> bool:
        """True when the current step is a multiple of `every` (> 0)."""
        return every > 0 and self.step % every == 0

    def check_first_update(self, metrics: dict[str, float]) -> None:
        """Warn once when the first update's ratios are not ~1 (recorded vs teacher-forced)."""
        drift = metrics.get("update/first_logratio_abs_max", 0.0)
        if drift > RATIO_WARNING and not self._warned_ratio:
            self._warned_ratio = True
            self.accelerator.print(
                f"warning: at step {self.step} the rollout's recorded log-probs differ from the "
                f"teacher-forced ones by up to {drift:.3g}, so ratios start away from 1 "
                "(lower precision weights, or a policy whose sampling and scoring disagree)"
            )

    def write_samples(self, images: torch.Tensor, rollout: Rollout, result: RewardResult) -> None:
        """A grid of this process's images (one row per group) with prompts and rewards."""
        captions = [
            f"{prompt}\treward {value:.4f}"
            for prompt, value in zip(rollout.sample_prompts, result.total.tolist(), strict=True)
        ]
        path = self.output_dir / "samples" / f"{ckpt.checkpoint_name(self.step)}.png"
        save_sample_grid(images, captions, path, images_per_row=self.config.rollout.group_size)

    def evaluate(self) -> dict[str, float]:
        """Eval metrics ("eval/..."), computed on the main process; {} without eval prompts."""
        if not self.eval_records:
            return {}
        results: dict[str, float] = {}
        error = None
        if self.is_main:
            logging = self.config.logging
            try:
                values = evaluate_policy(
                    self.policy,
                    self.eval_records,
                    logging.eval_samples_per_prompt,
                    self.cfg_scale,
                    reward=self.reward,
                    judge=self.judge,
                    preset=self.preset,
                    negative_views=logging.eval_negatives,
                    seed=self.config.seed,
                )
                results = {f"eval/{key}": value for key, value in values.items()}
            except RewardError as err:
                error = RewardError(f"evaluating on prompts.eval={self.config.prompts.eval}: {err}")
        self.raise_together(error)
        return results

    def probe_record(self) -> PromptRecord:
        """The record of logging.probe_prompt (looked up in the eval and training prompts for
        its negative and metadata), or the first eval prompt, else the first training one."""
        wanted = self.config.logging.probe_prompt
        pool = list(self.eval_records) + list(self.records)
        if wanted is None:
            return pool[0]
        return next((r for r in pool if r.prompt == wanted), PromptRecord(prompt=wanted))

    def write_heatmap(self) -> dict[str, float]:
        """Credit overlays of the probe prompt's group to heatmaps/ and the trackers (main
        process); returns the probe's credit figures ("probe/object_auroc", ...) when a judge
        is set and the probe prompt carries metadata."""
        record, preset = self.probe, credit_preset(self.preset)
        generator = torch.Generator(self.policy.device).manual_seed(self.config.seed + 7919)
        probe = probe_credit(
            self.policy,
            [record.prompt],
            self.probe_negatives,
            self.config.logging.probe_samples,
            preset,
            self.cfg_scale,
            generator,
            reward=self.reward,
            metadata=[record.metadata],
            temperature=self.config.rollout.temperature,
        )
        if self.judge is not None and record.metadata:
            probe = probe.with_figures(self.judge, [record.metadata])
        title = f"step {self.step}: {record.prompt}  vs  {probe.sample_negative(0) or '(null)'}"
        path = self.output_dir / "heatmaps" / f"{ckpt.checkpoint_name(self.step)}.png"
        figure = group_figure(probe, 0, title=title)
        save_figure(figure, path)
        if self.config.logging.trackers == "tensorboard":  # the same figure, drawn once
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
            writer.add_image("credit/probe", figure_array(figure), self.step)
        return {f"probe/{name}": value for name, value in probe.mean_figures().items()}

    def log(self, metrics: dict[str, float], bar: tqdm) -> None:
        """metrics.jsonl (every call), trackers and console (every logging.log_every steps)."""
        if not self.is_main:
            return
        record = self.metrics.append(self.step, metrics)
        if self.due(self.config.logging.log_every):
            self.accelerator.log(record, step=self.step)
            line = format_line(self.step, self.config.optim.steps, record, CONSOLE_KEYS)
            if bar.disable:
                print(line)
            else:
                bar.write(line)

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after the current step (the signal handler calls this); a
        second SIGINT (Ctrl-C) stops at once, without a checkpoint."""
        if reason == "SIGINT" and self.stop_reason is not None:
            raise KeyboardInterrupt
        self.stop_reason = reason

    def should_stop(self) -> bool:
        """True on every process when any process was asked to stop."""
        flag = torch.tensor(float(self.stop_reason is not None), device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, "max") > 0)

    def train(self) -> dict[str, float]:
        """Run the remaining steps; returns the last step's metrics. An error in the run's
        input (INPUT_ERRORS) stops it with TrainingStopped, its last checkpoint kept."""
        logging = self.config.logging
        bar = tqdm(
            total=self.config.optim.steps,
            initial=self.step,
            desc="train",
            disable=not (logging.progress_bar and self.is_main),
        )
        try:
            with stop_signals(self.request_stop):
                metrics = self.run_steps(bar)
        except INPUT_ERRORS as error:
            self.stop_on_error(error)
        finally:
            bar.close()
            self.accelerator.end_training()
        return metrics

    def run_steps(self, bar: tqdm) -> dict[str, float]:
        """The start-of-run evaluation, then the remaining steps with their evaluations,
        heatmaps, logs and checkpoints; returns the last step's metrics."""
        total, logging = self.config.optim.steps, self.config.logging
        metrics: dict[str, float] = {}
        if self.step == 0 and (
            logging.eval_at_start and self.eval_records or logging.heatmap_every
        ):
            start = self.evaluate() if logging.eval_at_start else {}
            if logging.heatmap_every and self.is_main:
                start.update(self.write_heatmap())
            self.log(start, bar)
        while self.step < total:
            metrics = self.train_step()
            try:
                if self.due(logging.eval_every) or (self.step == total and logging.eval_every):
                    metrics.update(self.evaluate())
                if self.due(logging.heatmap_every) and self.is_main:
                    metrics.update(self.write_heatmap())
            finally:  # a failed evaluation still logs the step it followed
                self.log(metrics, bar)
            bar.update(1)
            stopping = self.should_stop()
            if stopping or self.step == total or self.due(self.config.checkpoint.every):
                path = self.save_checkpoint()
            if stopping:
                self.accelerator.print(
                    f"\nstopped by {self.stop_reason or 'another process'} after step "
                    f"{self.step}/{total}; saved {path}. Continue with: t2i-gcpo train "
                    f"--logging.output_dir {self.output_dir} --resume"
                )
                break
        return metrics

    def stop_on_error(self, error: Exception) -> None:
        """Keep what the run had, then raise TrainingStopped saying what failed and where.

        An error inside a step that made no optimizer update leaves the model as the last
        completed step left it; the RNG and prompt order are rewound to the step's start, and
        that step's checkpoint is written if it is not on disk yet, so `--resume` continues
        exactly where the run stopped. After an update (or without a completed step) the last
        checkpoint on disk is what `--resume` continues from."""
        in_step, clean = self.step_start is not None, True
        if in_step:
            clean = not self.step_updated
            if clean:
                self.generator.set_state(self.step_start["rng"]["sampler"])
                torch.set_rng_state(self.step_start["rng"]["torch"])
                self.order.load_state_dict(self.step_start["order"])
        latest = ckpt.latest_checkpoint(self.output_dir)
        saved_step = int(ckpt.read_state(latest)["step"]) if latest is not None else 0
        if clean and self.step > 0 and saved_step != self.step:
            latest, saved_step = self.save_checkpoint(), self.step
        where = f"at step {self.step + 1}" if in_step else f"after step {self.step}"
        if latest is None:
            kept = "no checkpoint was written (no step had completed)"
        else:
            kept = (
                f"the run's last checkpoint is {latest} (step {saved_step}); fix the cause and "
                f"continue with: t2i-gcpo train --logging.output_dir {self.output_dir} --resume"
            )
        raise TrainingStopped(f"training stopped {where}: {error}\n{kept}", self.step) from error

    # -- run folder, checkpoints -------------------------------------------------------------

    def start_run(self, resumed: bool) -> None:
        """Write config.yaml and start the trackers (main process)."""
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            saved = self.output_dir / RUN_CONFIG_FILE
            if resumed and saved.is_file():
                before = flat_hparams(yaml.safe_load(saved.read_text(encoding="utf-8")))
                after = flat_hparams(self.config.to_dict())
                changed = sorted(k for k in after if before.get(k) != after[k])
                if changed:
                    print(f"resuming with changed config values: {', '.join(changed)}")
            write_text_atomic(saved, self.config.to_yaml())
            print(f"run folder: {self.output_dir} (step {self.step}/{self.config.optim.steps})")
        if self.config.logging.trackers != "none":
            self.accelerator.init_trackers(
                self.config.logging.trackers, config=flat_hparams(self.config.to_dict())
            )
        self.accelerator.wait_for_everyone()

    def rng_state(self) -> dict[str, torch.Tensor]:
        """This process's sampling generator and global torch RNG states."""
        return {"sampler": self.generator.get_state(), "torch": torch.get_rng_state()}

    def save_checkpoint(self) -> Path:
        """Write checkpoints/step_NNNNNN (all processes take part); returns its folder."""
        accelerator, staging = self.accelerator, ckpt.staging_dir(self.output_dir, self.step)
        if self.is_main:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        accelerator.wait_for_everyone()
        ckpt.save_tensors(self.rng_state(), ckpt.rng_file(staging, accelerator.process_index))
        if self.is_main:
            self.policy.save(staging / ckpt.POLICY_DIR)
            ckpt.save_tensors(self.optimizer.state_dict(), staging / "optimizer.pt")
            ckpt.save_tensors(self.scheduler.state_dict(), staging / "scheduler.pt")
        accelerator.wait_for_everyone()  # every process's RNG file is written
        if self.is_main:
            state = {
                "step": self.step,
                "prompt_order": self.order.state_dict(),
                "num_processes": accelerator.num_processes,
            }
            ckpt.write_state(staging, state)
            ckpt.publish(staging, self.output_dir, self.step)
            ckpt.prune(self.output_dir, self.config.checkpoint.keep_last)
        accelerator.wait_for_everyone()
        return ckpt.checkpoints_root(self.output_dir) / ckpt.checkpoint_name(self.step)

    def restore(self, folder: Path) -> None:
        """Continue from a checkpoint: step, prompt order, optimizer, scheduler and RNG."""
        state = ckpt.read_state(folder)
        self.step = int(state["step"])
        self.order.load_state_dict(state["prompt_order"])
        self.optimizer.load_state_dict(ckpt.load_tensors(folder / "optimizer.pt"))
        self.scheduler.load_state_dict(ckpt.load_tensors(folder / "scheduler.pt"))
        rng_path = ckpt.rng_file(folder, self.accelerator.process_index)
        if rng_path.is_file():
            rng = ckpt.load_tensors(rng_path)
            self.generator.set_state(rng["sampler"])
            torch.set_rng_state(rng["torch"])
        else:
            print(
                f"warning: {rng_path} is missing (the run had {state['num_processes']} "
                "processes); this process samples from a freshly seeded generator",
                file=sys.stderr,
            )
        self.accelerator.print(f"resumed from {folder} at step {self.step}")
