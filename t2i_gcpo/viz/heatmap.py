"""`t2i-gcpo heatmap`'s job as a function: probe a policy on some prompts, write every panel,
the group grids, the raw per-token numbers and an index.html gallery."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

from t2i_gcpo.algos import GCPO, AlgorithmPreset
from t2i_gcpo.data import PromptRecord, resolve_negatives
from t2i_gcpo.files import atomic_path, write_text_atomic
from t2i_gcpo.viz.figures import group_figure, sample_figure, save_figure
from t2i_gcpo.viz.html import write_gallery
from t2i_gcpo.viz.probe import CreditProbe, probe_credit


def heatmap_records(
    prompts: Sequence[str], negatives: Sequence[str] | None = None
) -> list[PromptRecord]:
    """The prompts as records, with explicit negative captions: one for every prompt or one
    per prompt (None: no caption)."""
    negatives = list(negatives or [])
    if len(negatives) == 1:
        negatives = negatives * len(prompts)
    if negatives and len(negatives) != len(prompts):
        raise ValueError(
            f"--negative was given {len(negatives)} times for {len(prompts)} prompts; give "
            "it once (for every prompt) or once per --prompt"
        )
    return [
        PromptRecord(prompt, negatives[i] if negatives else None)
        for i, prompt in enumerate(prompts)
    ]


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
    with atomic_path(out / "probe.safetensors") as partial:
        save_file(tensors, partial)
    written.append(out / "probe.safetensors")
    summary = {
        "prompts": probe.prompts,
        "negatives": probe.negatives,
        "samples_per_prompt": probe.group_size,
        "grid": list(probe.grid),
        "normalization": probe.preset.normalization,
        "divergence": probe.preset.divergence,
        "rewards": None if probe.rewards is None else probe.rewards.tolist(),
        "advantages": None if probe.advantages is None else probe.advantages.tolist(),
        "credit_figures": {k: v.tolist() for k, v in (probe.figures or {}).items()},
        "credit_figures_mean": probe.mean_figures(),
    }
    written.append(write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n"))
    details = {
        "credit": f"{probe.preset.normalization} over {probe.preset.divergence} divergence",
        "samples per prompt": probe.group_size,
        "token grid": f"{probe.grid[0]} x {probe.grid[1]}",
        "raw numbers": "probe.safetensors, summary.json",
    }
    details.update(
        {f"mean {k} (judge's objects)": f"{v:.3f}" for k, v in probe.mean_figures().items()}
    )
    written.append(write_gallery(out, title, sections, details))
    return written


def run_heatmap(
    policy,
    records: Sequence[PromptRecord],
    out: str | Path,
    negative_mode: str = "null",
    samples: int = 4,
    preset: AlgorithmPreset = GCPO,
    cfg_scale: float | None = None,
    seed: int = 0,
    reward=None,
    alpha: float = 0.6,
    mode: str = "nearest",
    judge=None,
    vocab: tuple[list[str], list[str]] | None = None,
) -> list[Path]:
    """Probe `policy` on the records' prompts against `negative_mode`'s negatives (see
    data.negatives) and write everything into `out`; returns the files. With a `judge`
    (reward_models.Judge) the summary also holds each sample's credit figures on the objects it
    finds (records need the judge's metadata). `vocab`: the classes and colours the "attribute"
    negative draws on (default: those the records name)."""
    negatives = resolve_negatives(records, negative_mode, seed, source="--prompt", vocab=vocab)
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    scale = policy.default_cfg_scale if cfg_scale is None else cfg_scale
    prompts = [record.prompt for record in records]
    probe = probe_credit(
        policy, prompts, negatives, samples, preset, scale, generator, reward=reward
    )
    if judge is not None:
        probe = probe.with_figures(judge, [record.metadata for record in records])
    return write_probe(probe, out, alpha, mode)
