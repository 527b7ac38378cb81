"""The policy interface: what the trainer, the rewards and the credit maps need from a model.

A policy generates an H x W grid of discrete image tokens (a VQ codebook's indices) in raster
order, conditioned on a text prompt, with classifier-free guidance (CFG) between a positive
branch (the prompt) and a negative branch (the null prompt, or an explicit negative caption).

Everything GCPO needs from a rollout comes back from `sample` in one `Rollout`: the tokens, and
the log-probabilities of each sampled token under both branches, read from the forward passes
that CFG already runs (temperature 1, no guidance, float32). `token_logprobs` recomputes the
same numbers teacher-forced, with a gradient, for the loss.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

import torch

NULL_NEGATIVE = "null"
"""Passed as `negative_prompts` to `token_logprobs`: score the unconditional (CFG) branch."""


@dataclass
class Rollout:
    """Sampled image tokens with their per-token log-probabilities under both CFG branches.

    N = len(prompts) * samples_per_prompt samples; T = H * W tokens per sample. Samples of one
    prompt are consecutive: sample i belongs to prompt `prompt_index[i] == i // samples_per_prompt`
    (group advantages rely on this).

    Fields:
        tokens: (N, T) long, image-token ids in raster order.
        logp_pos: (N, T) float32, log pi(y_t | y_<t, prompt) at temperature 1, no guidance.
        logp_neg: (N, T) float32, the same under the negative branch (null prompt or caption).
        prompt_index: (N,) long, index into `prompts` of each sample.
        prompts: the distinct prompts passed to `sample`.
        negative_prompts: one explicit negative caption per prompt, or None for the null branch.
        cfg_scale: the guidance scale used for sampling.
        entropy: (N, T) float32 or None, the entropy of the positive branch's next-token
            distribution (temperature 1, no guidance) at each step, from the same logits.
        logp_guided: (N, T) float32 or None, log-probs under the distribution the tokens were
            drawn from (guided logits over the temperature, before top-k / top-p), from the
            same logits (see Policy.guided_logprobs).
    """

    tokens: torch.Tensor
    logp_pos: torch.Tensor
    logp_neg: torch.Tensor
    prompt_index: torch.Tensor
    prompts: list[str]
    negative_prompts: list[str] | None
    cfg_scale: float
    entropy: torch.Tensor | None = None
    logp_guided: torch.Tensor | None = None

    def __post_init__(self) -> None:
        """Raise ValueError if the tensors' shapes disagree with (N, T) and (N,)."""
        shape = tuple(self.tokens.shape)
        if len(shape) != 2:
            raise ValueError(f"tokens must have shape (N, T), got {shape}")
        for name in ("logp_pos", "logp_neg", "entropy", "logp_guided"):
            if getattr(self, name) is not None and tuple(getattr(self, name).shape) != shape:
                raise ValueError(
                    f"{name} must have the shape of tokens {shape}, "
                    f"got {tuple(getattr(self, name).shape)}"
                )
        if tuple(self.prompt_index.shape) != shape[:1]:
            raise ValueError(
                f"prompt_index must have shape ({shape[0]},), got {tuple(self.prompt_index.shape)}"
            )

    @property
    def num_samples(self) -> int:
        """N, the number of sampled token grids."""
        return int(self.tokens.shape[0])

    @property
    def sample_prompts(self) -> list[str]:
        """The prompt of each sample: a list of N strings."""
        return [self.prompts[i] for i in self.prompt_index.tolist()]

    @staticmethod
    def concat(rollouts: list[Rollout]) -> Rollout:
        """Rollouts of the same policy and settings -> one (prompts appended, in order)."""
        first = rollouts[0]
        offsets, count = [], 0
        for rollout in rollouts:
            offsets.append(count)
            count += len(rollout.prompts)
        negatives = None
        if first.negative_prompts is not None:
            negatives = [n for r in rollouts for n in r.negative_prompts]
        optional = {}
        for name in ("entropy", "logp_guided"):
            if all(getattr(r, name) is not None for r in rollouts):
                optional[name] = torch.cat([getattr(r, name) for r in rollouts])
        return Rollout(
            tokens=torch.cat([r.tokens for r in rollouts]),
            logp_pos=torch.cat([r.logp_pos for r in rollouts]),
            logp_neg=torch.cat([r.logp_neg for r in rollouts]),
            prompt_index=torch.cat(
                [r.prompt_index + o for r, o in zip(rollouts, offsets, strict=True)]
            ),
            prompts=[p for r in rollouts for p in r.prompts],
            negative_prompts=negatives,
            cfg_scale=first.cfg_scale,
            **optional,
        )

    def prompt_subset(self, which: list[int]) -> Rollout:
        """The samples of the prompts `which` (indices into `prompts`), in that order."""
        rows = torch.cat([(self.prompt_index == i).nonzero().flatten() for i in which])
        remap = {old: new for new, old in enumerate(which)}
        return Rollout(
            tokens=self.tokens[rows],
            logp_pos=self.logp_pos[rows],
            logp_neg=self.logp_neg[rows],
            prompt_index=torch.tensor(
                [remap[i] for i in self.prompt_index[rows].tolist()], device=self.tokens.device
            ),
            prompts=[self.prompts[i] for i in which],
            negative_prompts=None
            if self.negative_prompts is None
            else [self.negative_prompts[i] for i in which],
            cfg_scale=self.cfg_scale,
            entropy=None if self.entropy is None else self.entropy[rows],
            logp_guided=None if self.logp_guided is None else self.logp_guided[rows],
        )

    @property
    def sample_negatives(self) -> list[str] | None:
        """The negative caption of each sample (N strings), or None for the null branch."""
        if self.negative_prompts is None:
            return None
        return [self.negative_prompts[i] for i in self.prompt_index.tolist()]


class Policy(abc.ABC):
    """An autoregressive text-to-image-token model that GCPO can sample from and train.

    Subclasses wrap one model family (Janus-Pro via transformers, the toy shapes model, ...).
    `sample` runs without gradients and leaves the train/eval mode as it found it;
    `token_logprobs` is differentiable with respect to `trainable_parameters()`.
    """

    @property
    @abc.abstractmethod
    def grid(self) -> tuple[int, int]:
        """(H, W): the image-token grid; T = H * W tokens per image, in raster order."""

    @property
    @abc.abstractmethod
    def codebook_size(self) -> int:
        """The number of distinct image-token ids (the VQ codebook size)."""

    @property
    @abc.abstractmethod
    def image_size(self) -> tuple[int, int]:
        """(H_px, W_px): the size of the images that `decode` returns."""

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """The device the model's parameters live on."""

    @property
    @abc.abstractmethod
    def dtype(self) -> torch.dtype:
        """The dtype of the model's trainable parameters."""

    @property
    def default_cfg_scale(self) -> float:
        """The guidance scale this policy samples with when none is given (5.0, the Janus-Pro
        reference recipe's, unless the model says otherwise)."""
        return 5.0

    @property
    def num_tokens(self) -> int:
        """T = H * W, the number of image tokens per sample."""
        height, width = self.grid
        return height * width

    @abc.abstractmethod
    def sample(
        self,
        prompts: list[str],
        negative_prompts: list[str] | None = None,
        samples_per_prompt: int = 1,
        cfg_scale: float = 5.0,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        """prompts (P,) -> Rollout of N = P * samples_per_prompt token grids (N, T).

        Guidance `uncond + cfg_scale * (cond - uncond)` on logits, then temperature, top-k and
        top-p. `negative_prompts=None` uses the null branch; a list gives one negative caption
        per prompt. `cfg_scale=1` samples from the positive branch alone.
        """

    @abc.abstractmethod
    def token_logprobs(
        self,
        prompts: list[str],
        tokens: torch.Tensor,
        negative_prompts: list[str] | str | None = None,
    ) -> torch.Tensor:
        """prompts (N,), tokens (N, T) -> log pi(tokens[:, t] | tokens[:, :t], prompt) (N, T) fp32.

        Teacher-forced, one forward pass, differentiable. `negative_prompts=None` scores the
        positive branch (the prompts); `"null"` scores the null branch of each prompt; a list
        of N captions scores those captions instead of the prompts.
        """

    def guided_logprobs(
        self,
        prompts: list[str],
        tokens: torch.Tensor,
        negative_prompts: list[str] | str | None,
        cfg_scale: float,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """prompts (N,), tokens (N, T) -> log-probs (N, T) fp32 of the tokens under the
        distribution `sample` draws them from (before top-k / top-p): the guided logits
        `uncond + cfg_scale * (cond - uncond)` over `temperature`, the negative branch being
        `negative_prompts` ("null" or None: the null prompt; else N captions). Teacher-forced,
        differentiable: one pass through each branch."""
        raise NotImplementedError(f"{type(self).__name__} does not score guided log-probs")

    @abc.abstractmethod
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, T) -> images (N, 3, H_px, W_px) float32 in [0, 1]."""

    @abc.abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H_px, W_px) in [0, 1] -> tokens (N, T): the image tokenizer's codes."""

    @abc.abstractmethod
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters an optimizer should update (never the frozen image decoder)."""

    @abc.abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write everything needed to reload this policy into `directory`; return its path."""

    @classmethod
    @abc.abstractmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
    ) -> Policy:
        """Load a policy saved by `save` (or a compatible checkpoint)."""

    @abc.abstractmethod
    def train(self, mode: bool = True) -> Policy:
        """Set training mode on the trainable parts (frozen parts stay in eval); return self."""

    def eval(self) -> Policy:
        """Set evaluation mode; return self."""
        return self.train(False)
