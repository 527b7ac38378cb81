"""Credit maps, overlays, localization, the heatmap command and the HTML pages."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from tolerances import SAME_MATHS

from reward_models import Verdict, load_reward
from t2i_gcpo.algos import (
    GCPO,
    credit_weights,
    localization_ratio,
    patch_coverage,
    token_divergence,
)
from t2i_gcpo.cli import main
from t2i_gcpo.data.geneval import make_record
from t2i_gcpo.evaluation import verdict_coverage
from t2i_gcpo.toy.models import tiny_janus_policy
from t2i_gcpo.toy.scenes import SceneObject, draw
from t2i_gcpo.viz import colorize, overlay, token_maps, upsample
from t2i_gcpo.viz.figures import group_figure, sample_figure, save_figure
from t2i_gcpo.viz.html import write_report
from t2i_gcpo.viz.probe import probe_credit


def referenced_files(document: str) -> list[str]:
    """The src/href targets of a page that are neither data URIs nor anchors."""
    targets = re.findall(r'(?:src|href)="([^"]+)"', document)
    return [t for t in targets if not t.startswith(("data:", "#"))]


# ---------------------------------------------------------------------------------------------
# Maps and overlays on hand-made credit
# ---------------------------------------------------------------------------------------------


def test_token_maps_reshape_in_raster_order():
    credit = torch.arange(6.0)
    assert torch.equal(token_maps(credit, (2, 3)), torch.tensor([[0.0, 1, 2], [3, 4, 5]]))
    batch = torch.stack([credit, -credit])
    assert token_maps(batch, (2, 3)).shape == (2, 2, 3)
    assert torch.equal(token_maps(batch, (2, 3))[1, 1], torch.tensor([-3.0, -4, -5]))
    with pytest.raises(ValueError, match="T = 2 \\* 2 = 4 tokens"):
        token_maps(credit, (2, 2))


def test_upsampling_nearest_keeps_blocks_and_smooth_stays_in_range():
    values = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    nearest = upsample(values, (4, 4), "nearest")
    assert torch.equal(nearest[:2, :2], torch.zeros(2, 2))
    assert torch.equal(nearest[2:, 2:], torch.full((2, 2), 3.0))
    smooth = upsample(values, (8, 8), "smooth")
    assert smooth.shape == (8, 8)
    assert smooth.min() >= 0.0 and smooth.max() <= 3.0
    assert 0.0 < smooth[3, 3] < 3.0  # interpolated between token centres
    with pytest.raises(ValueError, match="upsampling mode"):
        upsample(values, (4, 4), "cubic")


def test_colorize_maps_the_range_onto_the_colormap_ends():
    values = torch.tensor([[0.0, 0.5], [1.0, 2.0]])
    rgb = colorize(values, "gray")
    assert rgb.shape == (3, 2, 2) and rgb.min() >= 0 and rgb.max() <= 1
    assert torch.allclose(rgb[:, 0, 0], torch.zeros(3), atol=1e-6)  # the minimum: black
    assert torch.allclose(rgb[:, 1, 1], torch.ones(3), atol=1e-6)  # the maximum: white
    assert torch.allclose(rgb[:, 0, 1], torch.full((3,), 0.25), atol=0.01)
    assert torch.isfinite(colorize(torch.ones(2, 2))).all()  # a flat map is not 0 / 0


def test_overlay_blends_the_map_over_the_image():
    image = torch.rand(3, 8, 8)
    values = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert torch.allclose(overlay(image, values, alpha=0.0), image)
    only_map = overlay(image, values, alpha=1.0, cmap="gray")
    assert torch.allclose(only_map, colorize(upsample(values, (8, 8)), "gray"))
    half = overlay(image, values, alpha=0.5, cmap="gray")
    assert half.shape == (3, 8, 8) and half.min() >= 0 and half.max() <= 1
    assert torch.allclose(half[:, 0, 4], 0.5 * image[:, 0, 4] + 0.5)  # a credit-1 pixel
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, values, alpha=1.5)


# ---------------------------------------------------------------------------------------------
# Localization on hand-made masks
# ---------------------------------------------------------------------------------------------


def test_localization_is_one_for_uniform_credit_and_one_over_area_inside_the_mask():
    coverage = torch.zeros(1, 16)
    coverage[0, [0, 1, 4, 5]] = 1.0  # a quarter of a 4 x 4 grid
    uniform = torch.ones(1, 16)
    assert localization_ratio(uniform, coverage).item() == pytest.approx(1.0)
    inside = torch.zeros(1, 16)
    inside[0, [0, 5]] = 8.0
    assert localization_ratio(inside, coverage).item() == pytest.approx(4.0)  # 1 / 0.25
    outside = torch.zeros(1, 16)
    outside[0, 15] = 16.0
    assert localization_ratio(outside, coverage).item() == 0.0
    # fractional coverage: half the credit on a token half covered -> (0.5 * 0.5) / (0.5 / 4)
    partial = torch.tensor([[0.5, 0.0, 0.0, 0.0]])
    assert localization_ratio(torch.tensor([[2.0, 2.0, 0.0, 0.0]]), partial).item() == 2.0
    empty = localization_ratio(uniform, torch.zeros(1, 16))
    assert torch.isnan(empty).all()


def test_patch_coverage_pools_pixels_onto_the_token_grid():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4, :2] = True  # the left half of the top-left 4 x 4 patch
    coverage = patch_coverage(mask, (2, 2))
    assert torch.equal(coverage, torch.tensor([[0.5, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="does not split"):
        patch_coverage(mask, (3, 3))


def test_coverage_of_the_judges_found_objects_lies_on_their_patches():
    red = {"class": "square", "count": 1, "color": "red"}
    blue = {"class": "circle", "count": 1, "color": "blue"}
    objects = [
        [SceneObject("square", "red", 4, 4, 12)],
        [SceneObject("square", "red", 4, 4, 12), SceneObject("circle", "blue", 28, 28, 16)],
    ]
    metadata = [make_record("colors", [red]), make_record("color_attr", [red, blue])]  # fmt: skip
    rng = np.random.default_rng(0)
    images = torch.stack(
        [draw(o, rng, 1.0, m).image for o, m in zip(objects, metadata, strict=True)]
    )
    verdicts = load_reward("shapes-oracle").judge(images, ["", ""], metadata)
    assert [v.correct for v in verdicts] == [True, True]
    coverage = verdict_coverage(verdicts, (12, 12)).view(2, 12, 12)
    # the square covers pixels 4..16: patches 1..3, fully
    assert torch.equal(coverage[0, 1:4, 1:4], torch.ones(3, 3)) and coverage[0].sum() == 9
    assert coverage[1, 7:11, 7:11].sum() > 0 and coverage[1, :, 4:7].sum() == 0
    assert coverage.max() <= 1.0
    nothing = Verdict(False, torch.zeros(0, 48, 48, dtype=torch.bool))
    assert verdict_coverage([nothing], (12, 12)).sum() == 0


# ---------------------------------------------------------------------------------------------
# Probes and figures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "tiny"
    tiny_janus_policy(grid=4, seed=0).save(path)
    return path


def test_probe_credit_is_the_presets_credit_of_its_logprobs(tiny):
    from t2i_gcpo.policies import load_policy

    policy = load_policy(str(tiny))
    generator = torch.Generator().manual_seed(0)
    probe = probe_credit(policy, ["a red cat", "a blue dog"], ["a green cat", "a red dog"], 3,
                         GCPO, 2.0, generator)  # fmt: skip
    assert probe.num_samples == 6 and probe.maps("credit").shape == (6, 4, 4)
    expected = credit_weights(token_divergence(probe.logp_pos, probe.logp_neg, "k3"))
    assert torch.allclose(probe.credit, expected)
    assert torch.allclose(probe.credit.sum(dim=1), torch.full((6,), 16.0))
    # the negatives are the captions: scoring under the prompt itself gives no divergence
    same = probe_credit(policy, ["a red cat"], ["a red cat"], 2, GCPO, 1.0,
                        torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.allclose(same.divergence, torch.zeros_like(same.divergence), atol=1e-5)
    # against the null prompt the probe reuses the CFG pass's log-probs: they are the null
    # branch's teacher-forced ones
    null = probe_credit(policy, ["a red cat"], None, 2, GCPO, 2.0, torch.Generator().manual_seed(1))
    teacher = policy.token_logprobs(["a red cat"] * 2, null.tokens, "null")
    torch.testing.assert_close(null.logp_neg, teacher, **SAME_MATHS)
    softmax = probe.recredit(GCPO.replace(normalization="softmax"))
    assert not torch.allclose(softmax.credit, probe.credit)
    assert torch.equal(softmax.logp_neg, probe.logp_neg)

    panel = save_figure(sample_figure(probe, 4), Path(tiny).parent / "panel.png")
    grid = save_figure(group_figure(probe, 1), Path(tiny).parent / "group.png")
    assert Image.open(panel).width > 3 * Image.open(panel).height  # five panels side by side
    assert Image.open(grid).format == "PNG"


# ---------------------------------------------------------------------------------------------
# The heatmap command and the pages
# ---------------------------------------------------------------------------------------------


def test_heatmap_command_writes_the_files_it_lists(tiny, tmp_path, capsys):
    out = tmp_path / "maps"
    args = ["heatmap", "--policy", str(tiny), "--prompt", "a red cat", "--prompt", "a blue dog",
            "--negative-mode", "swap", "--samples", "2", "--reward", "none",
            "--normalization", "softmax", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    listed = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(p.name for p in listed) == sorted(
        [
            "group_00.png",
            "group_01.png",
            "sample_00_00.png",
            "sample_00_01.png",
            "sample_01_00.png",
            "sample_01_01.png",
            "probe.safetensors",
            "summary.json",
            "index.html",
        ]  # fmt: skip
    )
    assert all(p.is_file() and p.stat().st_size > 0 for p in listed)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in listed)
    summary = json.loads((out / "summary.json").read_text())
    for negative, prompt in zip(summary["negatives"], summary["prompts"], strict=True):
        changed = [a != b for a, b in zip(negative.split(), prompt.split(), strict=True)]
        assert sum(changed) == 1  # one colour or object word swapped
    assert summary["normalization"] == "softmax"
    tensors = load_file(out / "probe.safetensors")
    assert tensors["credit"].shape == (4, 16)
    page = (out / "index.html").read_text()
    targets = referenced_files(page)
    assert len(targets) == 6 and all((out / t).is_file() for t in targets)


def test_heatmap_attribute_negative_draws_on_the_whole_prompt_set(tiny, tmp_path, capsys):
    # the first held-out prompt is a lone class: its negative names another of the set's
    out = tmp_path / "maps"
    assert main(["heatmap", "--policy", str(tiny), "--prompts", "shapes:eval", "--limit", "1",
                 "--negative-mode", "attribute", "--samples", "1", "--reward", "none",
                 "--out", str(out)]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"] == ["a photo of a triangle"]
    assert summary["negatives"][0] in {f"a photo of a {s}" for s in ("circle", "square", "cross")}


def test_heatmap_command_rejects_bad_input(tiny, tmp_path, capsys):
    base = ["heatmap", "--policy", str(tiny), "--prompt", "a", "--prompt", "b",
            "--out", str(tmp_path)]  # fmt: skip
    assert main([*base, "--negative", "x", "--negative", "y", "--negative", "z"]) == 2
    assert "--negative was given 3 times for 2 prompts" in capsys.readouterr().err
    assert main([*base, "--alpha", "2"]) == 2
    assert "--alpha must be in [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--negative", "x", "--negative-mode", "null"])


def test_report_inlines_every_image_and_names_a_missing_run(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "heatmaps").mkdir(parents=True)
    (run / "samples").mkdir()
    lines = [{"step": 0, "eval/oracle/all": 0.25, "eval/localization/null": 1.2},
             {"step": 1, "reward/mean": 0.5, "loss": 0.1},
             {"step": 2, "reward/mean": 0.7, "loss": 0.05, "eval/oracle/all": 0.5}]  # fmt: skip
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    for folder, step in (("heatmaps", 0), ("heatmaps", 2), ("samples", 1), ("samples", 2)):
        Image.new("RGB", (8, 8), (step * 60, 0, 0)).save(run / folder / f"step_{step:06d}.png")
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert referenced_files(page) == []  # self-contained
    assert page.count("data:image/png;base64,") == 5  # curves, 2 samples, 2 heatmaps
    assert "<td>0.500</td>" in page  # the eval table
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "metrics.jsonl is missing" in capsys.readouterr().err
    (run / "metrics.jsonl").write_text('{"step": 0}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        write_report(run)
