"""`t2i-gcpo heatmap`'s job as a function: probe a policy on some prompts, write every panel,
the group grids, the raw per-token numbers and an index.html gallery."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

from t2i_gcpo.algos import GCPO, AlgorithmPreset
from t2i_gcpo.credit_probe import CreditProbe, probe_credit
from t2i_gcpo.negatives import swap_caption
from t2i_gcpo.viz.figures import group_figure, sample_figure, save_figure
from t2i_gcpo.viz.html import write_gallery, write_text_atomic


def resolve_negatives(
    prompts: Sequence[str], negatives: Sequence[str] | None, mode: str | None, seed: int = 0
) -> list[str] | None:
    """One negative caption per prompt (explicit ones, or swapped captions), or None for the
    null prompt; explicit negatives are one for all prompts or one per prompt."""
    if negatives:
        if len(negatives) == 1:
            return list(negatives) * len(prompts)
        if len(negatives) != len(prompts):
            raise ValueError(
                f"--negative was given {len(negatives)} times for {len(prompts)} prompts; give "
                "it once (for every prompt) or once per --prompt"
            )
        return list(negatives)
    if mode in (None, "null"):
        return None
    if mode == "swap":
        return [swap_caption(p, seed) for p in prompts]
    raise ValueError(f"negative mode must be null or swap (or give --negative); got {mode!r}")


def write_probe(
    probe: CreditProbe,
    out: str | Path,
    alpha: float = 0.6,
    mode: str = "nearest",
    title: str = "Credit heatmaps",
) -> list[Path]:
    """Write a probe's figures, numbers and gallery into `out`; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, sections = [], []
    for g, prompt in enumerate(probe.prompts):
        group_name = f"group_{g:02d}.png"
        written.append(save_figure(group_figure(probe, g, alpha, mode), out / group_name))
        images = [(group_name, "credit overlays of the group (one colour scale)")]
        for k in range(probe.group_size):
            i = g * probe.group_size + k
            name = f"sample_{g:02d}_{k:02d}.png"
            written.append(save_figure(sample_figure(probe, i, alpha, mode), out / name))
            images.append((name, f"sample {k}: image | credit | log p | log p neg | divergence"))
        negative = probe.sample_negative(g * probe.group_size) or "(null prompt)"
        sections.append((f"{prompt}  vs  {negative}", images))
    tensors = {
        name: getattr(probe, name).contiguous()
        for name in ("tokens", "logp_pos", "logp_neg", "divergence", "credit", "images")
    }
    for name in ("rewards", "advantages"):
        if getattr(probe, name) is not None:
            tensors[name] = getattr(probe, name).contiguous()
    partial = out / ".probe.safetensors.partial"
    save_file(tensors, partial)
    written.append(partial.replace(out / "probe.safetensors"))
    summary = {
        "prompts": probe.prompts,
        "negatives": probe.negatives,
        "samples_per_prompt": probe.group_size,
        "grid": list(probe.grid),
        "normalization": probe.preset.normalization,
        "divergence": probe.preset.divergence,
        "rewards": None if probe.rewards is None else probe.rewards.tolist(),
        "advantages": None if probe.advantages is None else probe.advantages.tolist(),
    }
    written.append(write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n"))
    details = {
        "credit": f"{probe.preset.normalization} over {probe.preset.divergence} divergence",
        "samples per prompt": probe.group_size,
        "token grid": f"{probe.grid[0]} x {probe.grid[1]}",
        "raw numbers": "probe.safetensors, summary.json",
    }
    written.append(write_gallery(out, title, sections, details))
    return written


def run_heatmap(
    policy,
    prompts: Sequence[str],
    out: str | Path,
    negatives: Sequence[str] | None = None,
    negative_mode: str | None = None,
    samples: int = 4,
    preset: AlgorithmPreset = GCPO,
    cfg_scale: float = 1.0,
    seed: int = 0,
    reward=None,
    alpha: float = 0.6,
    mode: str = "nearest",
) -> list[Path]:
    """Probe `policy` on `prompts` and write everything into `out`; returns the files."""
    chosen = resolve_negatives(prompts, negatives, negative_mode, seed)
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    probe = probe_credit(
        policy, prompts, chosen, samples, preset, cfg_scale, generator, reward=reward
    )
    return write_probe(probe, out, alpha, mode)
