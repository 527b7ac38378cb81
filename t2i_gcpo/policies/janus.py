"""Janus / Janus-Pro (transformers' JanusForConditionalGeneration) as a GCPO policy.

Image generation in Janus: the Llama backbone reads the formatted prompt (ending in the
image-start token, BOI), then one image token at a time; the generation head maps the last
hidden state to logits over the VQ codebook, and generated tokens are fed back through the
generation embeddings and aligner. The VQ decoder turns the token grid into pixels.

Sampling here is our own loop (transformers' `generate` has no per-branch log-probs and crashes
at guidance 1), written as small steps: build the doubled prompt batch (positive rows first,
then negative rows), prefill it into a KV cache, then decode one token per step with CFG on
the logits. Prompts of different lengths are left-padded; position ids always come from the
attention mask, in sampling and in teacher forcing alike, so both compute the same numbers.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import (
    AutoTokenizer,
    DynamicCache,
    JanusForConditionalGeneration,
    PreTrainedTokenizerBase,
)
from transformers.utils import cached_file

from t2i_gcpo.files import atomic_path
from t2i_gcpo.policies.base import NULL_NEGATIVE, Policy, Rollout
from t2i_gcpo.policies.image_tokenizers import FOLDER as IMAGE_TOKENIZER_FOLDER
from t2i_gcpo.policies.image_tokenizers import load_image_tokenizer
from t2i_gcpo.policies.lora import save_adapters

BOI_TOKEN = "<begin_of_image>"
"""The image-start token of Janus tokenizers, used when generation_config has no boi id."""

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """A torch dtype, a name in _DTYPES, or None (keep the checkpoint's) -> torch dtype or None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype must be a torch.dtype or one of {sorted(_DTYPES)}, got {dtype!r}")


# ---------------------------------------------------------------------------------------------
# Pure tensor steps of sampling
# ---------------------------------------------------------------------------------------------


def left_pad(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """rows (B lists of ids) -> ids (B, L) left-padded with pad_id, attention mask (B, L) long."""
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, length - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, length - len(row) :] = 1
    return ids.to(device), mask.to(device)


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """mask (B, L) -> position ids (B, L): 0 at each row's first real token, 0 on left padding."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def extend_mask(mask: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """mask (B, L) -> (B, L + steps) with `steps` attended positions appended."""
    return torch.cat([mask, mask.new_ones((mask.shape[0], steps))], dim=-1)


def cfg_logits(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """logits (2B, V), positive rows then negative rows -> uncond + s * (cond - uncond) (B, V)."""
    cond, uncond = logits.chunk(2, dim=0)
    return uncond + cfg_scale * (cond - uncond)


def filter_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """logits (B, V) -> logits (B, V) with all but the top_k largest per row set to -inf."""
    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """logits (B, V) -> logits (B, V) keeping the smallest set of tokens with mass >= top_p."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= top_p
    drop_sorted[..., 0] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def pick_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """logits (B, V) -> sampled token ids (B,) after temperature, top-k and top-p."""
    logits = logits.float() / temperature
    if top_k is not None:
        logits = filter_top_k(logits, top_k)
    if top_p is not None:
        logits = filter_top_p(logits, top_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)


def gather_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """logits (..., V), tokens (...) -> log_softmax(logits) at tokens (...) in float32."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """logits (..., V) -> entropy of softmax(logits) (...) in float32."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def check_sampling_args(
    samples_per_prompt: int,
    cfg_scale: float,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
) -> None:
    """Raise ValueError naming the first sampling argument out of its allowed range."""
    if not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be an int >= 1, got {samples_per_prompt!r}")
    if cfg_scale < 0:
        raise ValueError(f"cfg_scale must be >= 0 (1 = no guidance), got {cfg_scale}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use top_k=1 for greedy), got {temperature}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p}")


# ---------------------------------------------------------------------------------------------
# Loading helpers
# ---------------------------------------------------------------------------------------------


def _processor_chat_template(path_or_id: str | Path) -> str | None:
    """The Janus processor's chat template next to the model (jinja or legacy json), if any."""
    for name in ("chat_template.jinja", "chat_template.json"):
        file = cached_file(
            path_or_id,
            name,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if file is None:
            continue
        text = Path(file).read_text(encoding="utf-8")
        return json.loads(text)["chat_template"] if name.endswith(".json") else text
    return None


def load_janus_tokenizer(path_or_id: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a Janus folder or hub id, with the processor's chat template attached."""
    tokenizer = AutoTokenizer.from_pretrained(path_or_id)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = _processor_chat_template(path_or_id)
    return tokenizer


def _enable_checkpointing(model: JanusForConditionalGeneration) -> None:
    """Turn on activation checkpointing of the backbone layers (non-reentrant)."""
    options = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)


def _first_id(*candidates: int | None) -> int | None:
    """The first candidate that is not None, or None."""
    return next((c for c in candidates if c is not None), None)


# ---------------------------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------------------------


class JanusPolicy(Policy):
    """A Janus(-Pro) model and its tokenizer as a text-to-image-token policy.

    Trainable: the Llama backbone (with its text embeddings), the generation embeddings,
    aligner and head. Frozen and always in eval mode: the VQ model and the understanding-only
    vision encoder and aligner, which image generation never uses.

    `image_tokenizer` (see policies.image_tokenizers) replaces the model's VQ for encoding and
    decoding images (the shapes world's local PatchVQ); its codebook must match the model's.
    """

    def __init__(
        self,
        model: JanusForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        gradient_checkpointing: bool = False,
        image_tokenizer: torch.nn.Module | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_tokenizer = image_tokenizer
        self.adapter, self.lora_base = None, None  # set by policies.lora.add_adapters
        self.compute_dtype: torch.dtype | None = None  # mixed precision (see computing)
        self.sampler = "auto"  # "dynamic", "static" or "auto" (see uses_static_sampler)
        self._compiled_step = None
        if image_tokenizer is not None:
            self._check_image_tokenizer(image_tokenizer)
        self.bos_id, self.pad_id, self.boi_id = self._special_ids()
        self._check_grid()
        for frozen in self._frozen_modules():
            frozen.requires_grad_(False)
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()
        self.train(model.training)

    # -- construction ---------------------------------------------------------------------

    def _special_ids(self) -> tuple[int, int, int]:
        """(bos, pad, boi) ids from the tokenizer, generation_config or text config."""
        gen, text = self.model.generation_config, self.model.config.text_config
        boi_from_tokenizer = self.tokenizer.convert_tokens_to_ids(BOI_TOKEN)
        if boi_from_tokenizer == self.tokenizer.unk_token_id:
            boi_from_tokenizer = None
        ids = {
            "bos": _first_id(self.tokenizer.bos_token_id, gen.bos_token_id, text.bos_token_id),
            "pad": _first_id(self.tokenizer.pad_token_id, gen.pad_token_id, text.pad_token_id),
            "boi": _first_id(
                (getattr(gen, "generation_kwargs", None) or {}).get("boi_token_id"),
                getattr(gen, "boi_token_id", None),
                boi_from_tokenizer,
            ),
        }
        missing = [name for name, value in ids.items() if value is None]
        if missing:
            raise ValueError(
                f"JanusPolicy needs the {missing} token id(s) but neither the tokenizer nor the "
                "model's generation_config/text_config define them; set e.g. "
                "model.generation_config.generation_kwargs = {'boi_token_id': ...} and "
                "generation_config.bos_token_id / pad_token_id"
            )
        return ids["bos"], ids["pad"], ids["boi"]

    def _check_grid(self) -> None:
        """Raise ValueError if the vision config's token count is not the VQ grid's."""
        side = self.model.config.vq_config.num_patches
        expected = self.model.config.vision_config.num_image_tokens
        if side * side != expected:
            raise ValueError(
                f"vision_config.num_image_tokens is {expected} but the VQ grid is {side}x{side} "
                f"= {side * side} tokens; they must be equal"
            )

    def computing(self):
        """The context the model computes in: autocast to `compute_dtype` when it is set and
        differs from the weights' (mixed precision over float32 master weights), else none.
        Log-probs are taken in float32 after it (gather_logprobs)."""
        if self.compute_dtype is None or self.compute_dtype == self.dtype:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the backbone's activations in the backward pass (non-reentrant)."""
        _enable_checkpointing(self.model)

    def _check_image_tokenizer(self, image_tokenizer: torch.nn.Module) -> None:
        """Raise ValueError unless the image tokenizer's codebook and grid are the model's."""
        expected = (self.model.config.vq_config.num_embeddings, tuple(self.grid))
        got = (image_tokenizer.codebook_size, tuple(image_tokenizer.grid))
        if got != expected:
            raise ValueError(
                f"the image tokenizer has {got[0]} codes on a {got[1]} grid but the model "
                f"expects {expected[0]} codes on a {expected[1]} grid"
            )

    def _frozen_modules(self) -> list[torch.nn.Module]:
        """The modules image generation never trains: VQ model, understanding encoder, aligner."""
        inner = self.model.model
        return [inner.vqmodel, inner.vision_model, inner.aligner]

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        gradient_checkpointing: bool = False,
    ) -> JanusPolicy:
        """Load model (safetensors) and tokenizer from a local folder or a hub id."""
        model = JanusForConditionalGeneration.from_pretrained(
            path_or_id, dtype=resolve_dtype(dtype), use_safetensors=True
        )
        image_tokenizer = None
        folder = Path(path_or_id) / IMAGE_TOKENIZER_FOLDER
        if folder.is_dir():
            image_tokenizer = load_image_tokenizer(folder)
        if device is not None:
            model = model.to(device)
            image_tokenizer = image_tokenizer and image_tokenizer.to(device)
        return cls(model, load_janus_tokenizer(path_or_id), gradient_checkpointing, image_tokenizer)

    def save(self, directory: str | Path) -> Path:
        """Write model (safetensors) and tokenizer to `directory` atomically; return its path
        (a crash leaves either the old folder or the new one, never a half-written one). A
        policy with LoRA adapters writes the adapters and its base's name (policies.lora)."""
        target = Path(directory).expanduser().resolve()
        with atomic_path(target, folder=True) as staging:
            if self.adapter is not None:  # the adapters and the base's name, not a merged copy
                save_adapters(self, staging)
                return target
            self.model.save_pretrained(staging, safe_serialization=True)
            self.tokenizer.save_pretrained(staging)
            if self.image_tokenizer is not None:
                self.image_tokenizer.save_pretrained(staging / IMAGE_TOKENIZER_FOLDER)
        return target

    # -- properties -----------------------------------------------------------------------

    @property
    def grid(self) -> tuple[int, int]:
        """(H, W) of image tokens: the VQ latent grid."""
        side = self.model.config.vq_config.num_patches
        return side, side

    @property
    def default_cfg_scale(self) -> float:
        """generation_config.guidance_scale when the checkpoint sets it, else 5.0."""
        scale = getattr(self.model.generation_config, "guidance_scale", None)
        return float(scale) if scale is not None else super().default_cfg_scale

    @property
    def codebook_size(self) -> int:
        """The VQ codebook size (image-token vocabulary)."""
        return self.model.config.vq_config.num_embeddings

    @property
    def image_size(self) -> tuple[int, int]:
        """(H_px, W_px): the image tokenizer's, else the grid times the VQ decoder's
        upsampling 2 ** (levels - 1)."""
        if self.image_tokenizer is not None:
            size = self.image_tokenizer.image_size
            return size, size
        factor = 2 ** (len(self.model.config.vq_config.channel_multiplier) - 1)
        height, width = self.grid
        return height * factor, width * factor

    @property
    def device(self) -> torch.device:
        """The device of the generation head."""
        return self.model.model.generation_head.vision_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the generation head."""
        return self.model.model.generation_head.vision_head.weight.dtype

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters that require grad (backbone, generation embeddings, aligner and head)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> JanusPolicy:
        """Set the model's mode; the frozen modules stay in eval mode. Returns self."""
        self.model.train(mode)
        for frozen in self._frozen_modules():
            frozen.eval()
        return self

    # -- prompts --------------------------------------------------------------------------

    def format_prompt(self, text: str) -> str:
        """The chat-formatted generation prompt for `text`, without BOS and BOI.

        With a chat template (Janus checkpoints ship one with their processor) this is the
        processor's format for image generation: the user turn then the assistant prompt,
        "<|User|>: {text}\\n\\n<|Assistant|>:". A tokenizer without a chat template (the tiny
        test tokenizer) gets the text unchanged, so its ids are `bos + text tokens + boi`.
        """
        if self.tokenizer.chat_template is None:
            return text
        messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def prompt_ids(self, text: str) -> list[int]:
        """text -> ids of the generation prompt: BOS, the formatted prompt, then BOI."""
        ids = self.tokenizer(self.format_prompt(text), add_special_tokens=True)["input_ids"]
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id, *ids]
        return [*ids, self.boi_id]

    def null_ids(self, ids: list[int]) -> list[int]:
        """Prompt ids -> the null (unconditional) prompt: every id but BOS and BOI set to pad."""
        return [i if i in (self.bos_id, self.boi_id) else self.pad_id for i in ids]

    def branch_rows(
        self, prompts: list[str], negative_prompts: list[str] | str | None
    ) -> list[list[int]]:
        """Prompt ids of one branch: prompts (None), their null prompts ("null"), or captions."""
        if negative_prompts is None:
            return [self.prompt_ids(p) for p in prompts]
        if negative_prompts == NULL_NEGATIVE:
            return [self.null_ids(self.prompt_ids(p)) for p in prompts]
        if isinstance(negative_prompts, str) or len(negative_prompts) != len(prompts):
            raise ValueError(
                f"negative_prompts must be None, {NULL_NEGATIVE!r} or a list of {len(prompts)} "
                f"strings (one per prompt), got {negative_prompts!r}"
            )
        return [self.prompt_ids(n) for n in negative_prompts]

    def cfg_batch(
        self, prompts: list[str], negative_prompts: list[str] | None, samples_per_prompt: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """prompts (P,) -> doubled-batch ids, mask (2N, L) (positive rows first), index (N,).

        N = P * samples_per_prompt; row i and row N + i are the two branches of sample i, which
        belongs to prompt index[i]. `negative_prompts=None` gives null rows.
        """
        negatives = NULL_NEGATIVE if negative_prompts is None else negative_prompts
        positive_rows = self.branch_rows(prompts, None)
        negative_rows = self.branch_rows(prompts, negatives)
        index = torch.arange(len(prompts)).repeat_interleave(samples_per_prompt)
        rows = [positive_rows[i] for i in index] + [negative_rows[i] for i in index]
        ids, mask = left_pad(rows, self.pad_id, self.device)
        return ids, mask, index

    # -- forward pieces -------------------------------------------------------------------

    def text_embeds(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) -> text embeddings (B, L, D)."""
        return self.model.get_input_embeddings()(ids)

    def image_embeds(self, tokens: torch.Tensor) -> torch.Tensor:
        """image tokens (B, S) -> generation embeddings through the aligner (B, S, D)."""
        return self.model.prepare_embeddings_for_image_generation(tokens)

    def backbone(
        self, embeds: torch.Tensor, mask: torch.Tensor, cache: DynamicCache | None = None
    ) -> tuple[torch.Tensor, DynamicCache | None]:
        """embeds (B, S, D), mask (B, cached + S) -> last hidden states (B, S, D), cache."""
        positions = position_ids(mask)[:, -embeds.shape[1] :]
        out = self.model.model.language_model(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=cache is not None,
        )
        return out.last_hidden_state, out.cache

    def image_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (..., D) -> image-token logits (..., codebook_size) from the generation head.
        Under mixed precision (`computing`) the head runs in float32 on float32 hidden states:
        logits rounded to bfloat16 (spacing 1/16 at 10) would cost more than the rest."""
        if self.compute_dtype is None or self.compute_dtype == self.dtype:
            return self.model.model.generation_head(hidden)
        with torch.autocast(self.device.type, enabled=False):
            return self.model.model.generation_head(hidden.float())

    # -- sampling ---------------------------------------------------------------------------

    def prefill(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, DynamicCache]:
        """Prompt ids, mask (2B, L) -> logits of the first image token (2B, V), filled cache."""
        cache = DynamicCache(config=self.model.config.text_config)
        hidden, cache = self.backbone(self.text_embeds(ids), mask, cache)
        return self.image_logits(hidden[:, -1]), cache

    def decode_one(
        self, tokens: torch.Tensor, mask: torch.Tensor, cache: DynamicCache
    ) -> torch.Tensor:
        """Last tokens (2B,), mask (2B, cached + 1) -> next-token logits (2B, V); grows cache."""
        hidden, _ = self.backbone(self.image_embeds(tokens[:, None]), mask, cache)
        return self.image_logits(hidden[:, -1])

    def generate_tokens(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        cfg_scale: float,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Doubled prompt batch (2B, L) -> tokens (B, T), branch log-probs (2B, T) float32,
        positive-branch entropies (B, T) float32, log-probs under the guided distribution the
        tokens are drawn from (B, T) float32."""
        if self.uses_static_sampler:
            logits, decode = self.static_decoder(ids, mask)
        else:
            logits, decode = self.dynamic_decoder(ids, mask)
        tokens, logps, entropies, guided_logps = [], [], [], []
        for step in range(self.num_tokens):
            guided = cfg_logits(logits, cfg_scale)
            token = pick_tokens(guided, temperature, top_k, top_p, generator)
            both = token.repeat(2)
            tokens.append(token)
            logps.append(gather_logprobs(logits, both))
            entropies.append(entropy(logits[: len(token)]))
            guided_logps.append(gather_logprobs(guided / temperature, token))
            if step + 1 < self.num_tokens:
                logits = decode(both)
        return (
            torch.stack(tokens, dim=1),
            torch.stack(logps, dim=1),
            torch.stack(entropies, 1),
            torch.stack(guided_logps, 1),
        )

    @property
    def uses_static_sampler(self) -> bool:
        """sampler "static", or "auto" on a CUDA device (where CUDA graphs pay off)."""
        return self.sampler == "static" or (self.sampler == "auto" and self.device.type == "cuda")

    def dynamic_decoder(self, ids: torch.Tensor, mask: torch.Tensor):
        """Prefill into a growing cache -> (first logits (2B, V), decode(tokens (2B,)) -> next
        logits): the cache and the mask grow by one position a step."""
        logits, cache = self.prefill(ids, mask)
        state = {"mask": mask}

        def decode(tokens: torch.Tensor) -> torch.Tensor:
            state["mask"] = extend_mask(state["mask"])
            return self.decode_one(tokens, state["mask"], cache)

        return logits, decode

    def static_decoder(self, ids: torch.Tensor, mask: torch.Tensor):
        """Prefill into a preallocated (static) KV cache -> (first logits, decode): every
        decode step has the same shapes and buffers (the full-length mask is filled in place,
        the positions advance in place), so on CUDA it is compiled once and replayed as a CUDA
        graph (torch.compile, mode "reduce-overhead"), without Python's per-kernel overhead."""
        from transformers import StaticCache

        length, total = ids.shape[1], ids.shape[1] + self.num_tokens
        cache = StaticCache(config=self.model.config.text_config, max_cache_len=total)
        full = mask.new_zeros(mask.shape[0], total)
        full[:, :length] = mask
        positions = position_ids(mask)
        out = self.model.model.language_model(
            inputs_embeds=self.text_embeds(ids),
            attention_mask=full,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        )
        step = {"index": length, "position": positions[:, -1:].clone()}
        run = self._static_step()

        def decode(tokens: torch.Tensor) -> torch.Tensor:
            full[:, step["index"]] = 1
            step["index"] += 1
            step["position"] += 1
            return run(tokens, full, step["position"], cache)

        return self.image_logits(out.last_hidden_state[:, -1]), decode

    def _static_step(self):
        """One decode step over a static cache; compiled for CUDA graphs on a CUDA device."""

        def one(tokens, mask, position, cache):
            out = self.model.model.language_model(
                inputs_embeds=self.image_embeds(tokens[:, None]),
                attention_mask=mask,
                position_ids=position,
                cache=cache,
                use_cache=True,
            )
            return self.image_logits(out.last_hidden_state[:, -1])

        if self.device.type != "cuda":
            return one
        if self._compiled_step is None:
            self._compiled_step = torch.compile(one, mode="reduce-overhead", dynamic=False)
        return self._compiled_step

    @torch.no_grad()
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
        """prompts (P,) -> Rollout of P * samples_per_prompt grids; see Policy.sample."""
        check_sampling_args(samples_per_prompt, cfg_scale, temperature, top_k, top_p)
        if isinstance(prompts, str) or not prompts:
            raise ValueError(f"prompts must be a non-empty list of strings, got {prompts!r}")
        if isinstance(negative_prompts, str):
            raise ValueError(
                "sample's negative_prompts must be None (null branch) or a list of "
                f"{len(prompts)} captions, got the string {negative_prompts!r}"
            )
        ids, mask, index = self.cfg_batch(prompts, negative_prompts, samples_per_prompt)
        was_training = self.model.training
        self.eval()
        try:
            with self.computing():
                tokens, logps, entropies, guided = self.generate_tokens(
                    ids, mask, cfg_scale, temperature, top_k, top_p, generator
                )
        finally:
            self.train(was_training)
        logp_pos, logp_neg = logps.chunk(2, dim=0)
        return Rollout(
            tokens=tokens,
            logp_pos=logp_pos,
            logp_neg=logp_neg,
            prompt_index=index.to(tokens.device),
            prompts=list(prompts),
            negative_prompts=None if negative_prompts is None else list(negative_prompts),
            cfg_scale=float(cfg_scale),
            entropy=entropies,
            logp_guided=guided,
        )

    # -- scoring and decoding -------------------------------------------------------------------

    def _check_tokens(self, tokens: torch.Tensor, num_rows: int | None = None) -> None:
        """Raise ValueError unless tokens is a long (N, T) grid of valid codebook ids."""
        expected = f"({num_rows if num_rows is not None else 'N'}, {self.num_tokens})"
        if tokens.ndim != 2 or tokens.shape[1] != self.num_tokens:
            raise ValueError(f"tokens must have shape {expected}, got {tuple(tokens.shape)}")
        if num_rows is not None and tokens.shape[0] != num_rows:
            raise ValueError(
                f"tokens must have shape {expected} (one row per prompt), got {tuple(tokens.shape)}"
            )
        if tokens.dtype != torch.long:
            raise ValueError(f"tokens must be torch.long, got {tokens.dtype}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise ValueError(
                f"tokens must lie in [0, {self.codebook_size}), got values in "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )

    def token_logprobs(
        self,
        prompts: list[str],
        tokens: torch.Tensor,
        negative_prompts: list[str] | str | None = None,
    ) -> torch.Tensor:
        """prompts (N,), tokens (N, T) -> teacher-forced log-probs (N, T) float32, differentiable.

        `negative_prompts`: None scores the prompts, "null" their null prompts, a list of N
        captions scores those captions. One forward pass over [prompt ; tokens[:, :-1]]: the
        position of BOI predicts token 0.
        """
        return gather_logprobs(self.token_logits(prompts, tokens, negative_prompts), tokens)

    def token_logits(
        self,
        prompts: list[str],
        tokens: torch.Tensor,
        negative_prompts: list[str] | str | None = None,
    ) -> torch.Tensor:
        """The teacher-forced image-token logits (N, T, codebook_size) behind `token_logprobs`
        (same arguments), for losses that need more than the sampled tokens' log-probs."""
        if isinstance(prompts, str):
            raise ValueError(f"prompts must be a list of strings, got the string {prompts!r}")
        self._check_tokens(tokens, num_rows=len(prompts))
        tokens = tokens.to(self.device)
        ids, mask = left_pad(self.branch_rows(prompts, negative_prompts), self.pad_id, self.device)
        with self.computing():
            embeds = torch.cat([self.text_embeds(ids), self.image_embeds(tokens[:, :-1])], dim=1)
            hidden, _ = self.backbone(embeds, extend_mask(mask, self.num_tokens - 1))
            return self.image_logits(hidden[:, -self.num_tokens :])

    def guided_logprobs(
        self,
        prompts: list[str],
        tokens: torch.Tensor,
        negative_prompts: list[str] | str | None,
        cfg_scale: float,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """See Policy.guided_logprobs: the sampler's `cfg_logits` over `temperature`."""
        check_sampling_args(1, cfg_scale, temperature, None, None)
        cond = self.token_logits(prompts, tokens)
        uncond = self.token_logits(prompts, tokens, negative_prompts or NULL_NEGATIVE)
        guided = cfg_logits(torch.cat([cond, uncond]), cfg_scale) / temperature
        return gather_logprobs(guided, tokens.to(guided.device))

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, T) -> images (N, 3, H_px, W_px) float32 in [0, 1] (the image tokenizer,
        else the VQ decoder)."""
        self._check_tokens(tokens)
        if self.image_tokenizer is not None:
            return self.image_tokenizer.decode(tokens.to(self.device)).float().contiguous()
        pixels = self.model.model.vqmodel.decode(tokens.to(self.device))
        return ((pixels.float().clamp(-1, 1) + 1) / 2).contiguous()

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H_px, W_px) in [0, 1] -> tokens (N, T) (the image tokenizer, else the
        VQ encoder)."""
        expected = (3, *self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must be (N, {expected}), got {tuple(images.shape)}")
        if self.image_tokenizer is not None:
            return self.image_tokenizer.encode(images.to(self.device))
        vq = self.model.model.vqmodel
        pixels = images.to(device=self.device, dtype=self.dtype) * 2.0 - 1.0
        return vq.encode(pixels).image_tokens.view(len(images), -1)
