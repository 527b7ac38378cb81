"""Reward models: CLIPScore, AestheticScore, the shapes oracle, plug-in loading and the reward
signature rule, checked weighted sums.

Every CLIP here is a tiny open_clip model built from a config in the test (one trained for a few
dozen contrastive steps on shapes-world renders); nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from safetensors.torch import save_file

from reward_models import (
    REWARDS,
    CLIPScore,
    CombinedReward,
    Judge,
    RewardError,
    RewardModel,
    RewardNotFoundError,
    RewardSpec,
    load_aesthetic_head,
    load_reward,
    register_reward,
)
from reward_models.clip import ImagePreprocess, fit_to_size
from t2i_gcpo.data.geneval import make_record
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.assets import ASSETS_DIR, shapes_aesthetic_path, shapes_clip_path
from t2i_gcpo.toy.models import register_open_clip_configs, shapes_clip_config, shapes_tokenizer
from t2i_gcpo.toy.rewards import ShapesOracle
from t2i_gcpo.toy.scenes import COLORS, SHAPES, SceneObject

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LAION_HEAD = (
    ROOT.parent / "shared" / "fixtures" / "laion-aesthetic-sac-logos-ava1-l14-linearMSE.pth"
)
HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
# Small enough to learn colour-caption binding in ~100 steps on one CPU thread.
TRAINABLE_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 48, "patch_size": 12, "width": 64, "layers": 1, "head_width": 32},
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 32,
        "width": 64,
        "heads": 2,
        "layers": 1,
        "pad_id": 3,
        "eos_id": 2,
        "pool_type": "eos",
        "hf_tokenizer_name": "t2i-gcpo-shapes",
    },
}


def write_clip_folder(folder: Path, model_cfg: dict, model: torch.nn.Module | None = None) -> Path:
    """An open_clip "local-dir" folder: config, tokenizer and (if given) weights."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": HALF}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    shapes_tokenizer(append_eos=True).save_pretrained(folder)
    if model is not None:
        save_file(model.state_dict(), folder / "open_clip_model.safetensors")
    return folder


def caption(obj: SceneObject) -> str:
    """The GenEval prompt naming one object's colour and class."""
    return make_record("colors", [{"class": obj.shape, "count": 1, "color": obj.color}])["prompt"]


def drawn(*objects: SceneObject, seed: int = 0) -> S.Scene:
    """A flat-ground scene of `objects` with its GenEval record (colors or color_attr)."""
    include = [{"class": o.shape, "count": 1, "color": o.color} for o in objects]
    record = make_record("colors" if len(objects) == 1 else "color_attr", include)
    return S.draw(objects, np.random.default_rng(seed), 0.0, record)


def renders(n: int, seed: int) -> list:
    """n flat-ground scenes of one object of a random colour and class."""
    return S.random_scenes(n, seed, split="any", texture=0.0, categories=("colors",))


def train_contrastive(model, tokenizer, steps: int = 100, batch: int = 48) -> None:
    """A few CLIP steps on single-object renders; duplicate captions share the target mass."""
    scenes = renders(512, seed=0)
    pixels = (torch.stack([s.image for s in scenes]) - 0.5) / 0.5
    tokens = tokenizer([s.prompt for s in scenes])
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for _ in range(steps):
        pick = torch.randperm(len(scenes), generator=generator)[:batch]
        image = F.normalize(model.encode_image(pixels[pick]), dim=-1)
        text = F.normalize(model.encode_text(tokens[pick]), dim=-1)
        logits = model.logit_scale.exp() * image @ text.T
        same = (tokens[pick][:, None] == tokens[pick][None]).all(-1).float()
        target = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def trained_clip_dir(tmp_path_factory) -> Path:
    folder = write_clip_folder(tmp_path_factory.mktemp("trained_clip"), TRAINABLE_CLIP)
    torch.manual_seed(0)
    model = open_clip.CLIP(**TRAINABLE_CLIP)
    train_contrastive(model, open_clip.get_tokenizer(f"local-dir:{folder}"))
    save_file(model.state_dict(), folder / "open_clip_model.safetensors")
    return folder


@pytest.fixture(scope="module")
def shapes_clip_dir(tmp_path_factory) -> Path:
    """The shapes world's CLIP architecture (t2i_gcpo/toy/model_configs) with random weights."""
    torch.manual_seed(1)
    model = open_clip.CLIP(**shapes_clip_config())
    return write_clip_folder(tmp_path_factory.mktemp("shapes_clip"), shapes_clip_config(), model)


def wrong_color(obj: SceneObject) -> SceneObject:
    colors = list(COLORS)
    return dataclasses.replace(obj, color=colors[(colors.index(obj.color) + 1) % len(colors)])


# ---------------------------------------------------------------- CLIPScore


def test_clip_score_prefers_true_captions_after_contrastive_training(trained_clip_dir):
    scenes = renders(64, seed=1000)
    images = torch.stack([s.image for s in scenes])
    score = CLIPScore(f"local-dir:{trained_clip_dir}", device="cpu")
    true = score(images, [s.prompt for s in scenes], [{}] * 64)
    false = score(images, [caption(wrong_color(s.objects[0])) for s in scenes], [{}] * 64)
    assert true.shape == (64,) and true.dtype == torch.float32
    assert (true >= 0).all() and (false >= 0).all()
    assert (true > false).float().mean() >= 0.85
    assert true.mean() > false.mean() + 1.0


def test_clip_score_is_clamped_scaled_cosine_of_open_clip_features(trained_clip_dir):
    scenes = renders(5, seed=7)
    images = torch.stack([s.image for s in scenes])
    prompts = [s.prompt for s in scenes[:3]] + ["a purple square", "a photo of a red circle"]
    model = open_clip.create_model(f"local-dir:{trained_clip_dir}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{trained_clip_dir}")
    with torch.no_grad():
        image = model.encode_image((images - 0.5) / 0.5, normalize=True)
        text = model.encode_text(tokenizer(prompts), normalize=True)
    expected = (2.5 * (image * text).sum(-1)).clamp_min(0)
    # a plain folder path is read as local-dir; batch_size 2 splits images and prompts
    score = CLIPScore(str(trained_clip_dir), scale=2.5, batch_size=2)
    torch.testing.assert_close(score(images, prompts, [{}] * 5), expected)


def test_clip_score_encodes_each_distinct_prompt_once(trained_clip_dir):
    tokenized: list[str] = []
    tokenizer = open_clip.get_tokenizer(f"local-dir:{trained_clip_dir}")

    def counting_tokenizer(texts):
        tokenized.extend(texts)
        return tokenizer(texts)

    model = open_clip.create_model(f"local-dir:{trained_clip_dir}")
    score = CLIPScore(model=model, tokenizer=counting_tokenizer)
    scene = drawn(SceneObject("circle", "red", 4, 4, 16))
    prompts = [scene.prompt, "a blue square", scene.prompt, scene.prompt]
    scores = score(scene.image.expand(4, -1, -1, -1), prompts, [{}] * 4)
    assert sorted(tokenized) == sorted({scene.prompt, "a blue square"})
    assert scores[0] == scores[2] == scores[3]


def test_clip_score_resizes_larger_and_non_square_images(trained_clip_dir):
    score = CLIPScore(f"local-dir:{trained_clip_dir}")
    scene = drawn(SceneObject("square", "green", 26, 24, 16))
    small = scene.image[None]
    large = F.interpolate(small, scale_factor=4, mode="nearest")
    ground = S.TILES[0][:, :1, :1].expand(1, 3, 192, 16)
    wide = torch.cat([ground, large, ground], dim=3)  # (192, 224): the centre crop restores it
    prompts = [scene.prompt]
    reference = score(small, prompts, [{}])
    # bicubic antialiased downsampling of the 4x image does not restore its hard edges exactly
    torch.testing.assert_close(score(large, prompts, [{}]), reference, atol=0, rtol=0.03)
    torch.testing.assert_close(score(wide, prompts, [{}]), reference, atol=0, rtol=0.03)


def test_fit_to_size_follows_open_clip_resize_modes():
    images = torch.rand(2, 3, 40, 20)
    assert fit_to_size(images, (10, 10), "squash", "bicubic", 0.0).shape == (2, 3, 10, 10)
    shortest = fit_to_size(images, (10, 10), "shortest", "bilinear", 0.0)
    assert shortest.shape == (2, 3, 10, 10)  # resized to (20, 10), then centre-cropped
    longest = fit_to_size(images, (10, 10), "longest", "bicubic", 0.5)
    assert longest.shape == (2, 3, 10, 10)  # resized to (10, 5), then padded left and right
    assert (longest[..., :2] == 0.5).all() and (longest[..., -3:] == 0.5).all()
    assert (shortest >= 0).all() and (shortest <= 1).all()
    with pytest.raises(ValueError, match="resize_mode='crop'.*'shortest'"):
        ImagePreprocess((10, 10), (0.5,) * 3, (0.5,) * 3, resize_mode="crop")


def test_clip_score_in_bfloat16_is_close_to_float32(trained_clip_dir):
    scenes = renders(4, seed=3)
    images, prompts = torch.stack([s.image for s in scenes]), [s.prompt for s in scenes]
    full = CLIPScore(f"local-dir:{trained_clip_dir}")(images, prompts, [{}] * 4)
    half = CLIPScore(f"local-dir:{trained_clip_dir}", dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    scores = half(images, prompts, [{}] * 4)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, full, atol=3.0, rtol=0)


def test_clip_score_argument_errors(trained_clip_dir):
    with pytest.raises(ValueError, match="pretrained='openai' cannot be used with"):
        CLIPScore(f"local-dir:{trained_clip_dir}", pretrained="openai")
    with pytest.raises(ValueError, match="model_name='ViT-B-32' is an architecture name"):
        CLIPScore("ViT-B-32")
    with pytest.raises(ValueError, match="dtype='float8'.*expected one of"):
        CLIPScore(f"local-dir:{trained_clip_dir}", dtype="float8")
    with pytest.raises(ValueError, match="give model_name"):
        CLIPScore()


def test_clip_score_from_an_architecture_name_and_a_local_checkpoint(shapes_clip_dir):
    register_open_clip_configs()  # makes "shapes-clip" a built-in open_clip architecture
    checkpoint = shapes_clip_dir / "open_clip_model.safetensors"
    tokenizer = open_clip.get_tokenizer(f"local-dir:{shapes_clip_dir}")
    score = CLIPScore("shapes-clip", pretrained=checkpoint, tokenizer=tokenizer)
    # a bare checkpoint carries no preprocess config: open_clip falls back to OpenAI's mean/std
    assert score.encoder.preprocess.mean == tuple(open_clip.OPENAI_DATASET_MEAN)
    side = shapes_clip_config()["vision_cfg"]["image_size"]
    half = ImagePreprocess((side, side), (0.5,) * 3, (0.5,) * 3)
    score = CLIPScore("shapes-clip", pretrained=checkpoint, tokenizer=tokenizer, preprocess=half)
    scene = drawn(SceneObject("circle", "purple", 4, 26, 16))
    args = (scene.image[None], [scene.prompt], [{}])
    assert torch.equal(score(*args), CLIPScore(shapes_clip_dir)(*args))


needs_assets = pytest.mark.skipif(
    not (ASSETS_DIR / "clip").is_dir(), reason="shapes assets not built in this checkout"
)


def test_clip_and_aesthetic_say_which_model_they_need():
    with pytest.raises(ValueError, match="'clip' reward needs model_name.*'shapes-clip'"):
        load_reward("clip")
    with pytest.raises(RewardError, match=r"keyword arguments \[\] \(missing .*'head_path'"):
        load_reward("aesthetic")  # head_path is required


@needs_assets
def test_shapes_rewards_are_the_shipped_clip_and_head():
    scene = drawn(SceneObject("triangle", "blue", 28, 4, 16))
    images, prompts = scene.image[None], [scene.prompt]
    reward = load_reward("shapes-clip", scale=50.0)
    expected = CLIPScore(shapes_clip_path(), scale=50.0)(images, prompts, [{}])
    assert isinstance(reward, CLIPScore)
    torch.testing.assert_close(reward(images, prompts, [{}]), expected)
    head = load_aesthetic_head(shapes_aesthetic_path())
    model = open_clip.create_model(f"local-dir:{shapes_clip_path()}").eval()
    with torch.no_grad():
        expected = head(F.normalize(model.encode_image((images - 0.5) / 0.5), dim=-1))
    torch.testing.assert_close(load_reward("shapes-aesthetic")(images, [""], [{}]), expected)


# ---------------------------------------------------------------- the shapes oracle


def test_shapes_oracle_strict_share_and_verdicts():
    objects = [SceneObject("circle", "red", 2, 2, 16), SceneObject("square", "blue", 28, 28, 16)]
    full, half = drawn(*objects), drawn(objects[0])
    images = torch.stack([full.image, half.image])
    metadata = [full.metadata, full.metadata]
    oracle = load_reward("shapes-oracle")
    assert isinstance(oracle, ShapesOracle) and isinstance(oracle, Judge)
    assert oracle(images, ["", ""], metadata).tolist() == [1.0, 0.0]
    assert ShapesOracle("share")(images, ["", ""], metadata).tolist() == [1.0, 0.5]
    verdicts = oracle.judge(images, ["", ""], metadata)
    assert [v.correct for v in verdicts] == [True, False]
    assert verdicts[0].masks.shape == (2, 48, 48) and verdicts[1].masks.shape == (1, 48, 48)
    assert verdicts[0].masks[0, :24, :24].any() and not verdicts[0].masks[0, 24:].any()
    with pytest.raises(ValueError, match="mode='mean'.*'strict', 'share'"):
        ShapesOracle("mean")


def test_shapes_oracle_extras_limits_objects_beyond_the_prompt():
    red_circle, blue_square = (
        SceneObject("circle", "red", 2, 2, 16),
        SceneObject("square", "blue", 28, 28, 16),
    )
    alone = drawn(red_circle)
    other = drawn(red_circle, blue_square)
    twice = drawn(red_circle, SceneObject("circle", "red", 28, 28, 16))
    images = torch.stack([alone.image, other.image, twice.image])
    metadata = [alone.metadata] * 3  # "a photo of a red circle" for all three
    prompts = [""] * 3

    def scores(mode, extras):
        return ShapesOracle(mode, extras=extras)(images, prompts, metadata).tolist()

    # GenEval's rules ignore what the prompt does not ask for
    assert scores("strict", "allowed") == [1.0, 1.0, 1.0]
    # "named": a second circle breaks it, a square does not; "none": both do
    assert scores("strict", "named") == [1.0, 1.0, 0.0]
    assert scores("strict", "none") == [1.0, 0.0, 0.0]
    assert scores("share", "named") == [1.0, 1.0, 0.5]
    assert scores("share", "none") == [1.0, 0.5, 0.5]
    # wrong colour and an extra object: neither of the two requirements holds
    wrong = drawn(SceneObject("circle", "blue", 2, 2, 16), blue_square)
    score = ShapesOracle("share", extras="none")(wrong.image[None], [""], metadata[:1])
    assert score.tolist() == [0.0]
    with pytest.raises(ValueError, match="extras='some'.*'allowed', 'named', 'none'"):
        ShapesOracle("share", extras="some")


# ---------------------------------------------------------------- plug-ins

PLUGIN = """
import torch

def mean_pixel(images, prompts, metadata, offset=0.0):
    return images.mean(dim=(1, 2, 3)) + offset

class Constant:
    def __init__(self, value):
        self.value = value

    def __call__(self, images, prompts, metadata):
        return torch.full((len(images),), float(self.value))

def make_constant(value=1.0):
    return Constant(value)
"""


def images_and_prompts(n: int = 3):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(n)), [""] * n, [{}] * n


def test_load_reward_from_a_file_path(tmp_path, monkeypatch):
    (tmp_path / "my_rm.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    images, prompts, metadata = images_and_prompts()
    plain = load_reward("./my_rm.py:mean_pixel")
    assert plain.__name__ == "mean_pixel"  # a reward function is used as it is
    torch.testing.assert_close(plain(images, prompts, metadata), images.mean(dim=(1, 2, 3)))
    shifted = load_reward("./my_rm.py:mean_pixel", offset=1.0)  # kwargs fill its parameters
    torch.testing.assert_close(shifted(images, prompts, metadata), images.mean(dim=(1, 2, 3)) + 1)
    assert (
        load_reward(f"{tmp_path}/my_rm.py:Constant", value=2)(*images_and_prompts()).tolist()
        == [2.0] * 3
    )
    assert (
        load_reward("my_rm.py:make_constant", value=3)(*images_and_prompts()).tolist() == [3.0] * 3
    )


def test_load_reward_from_a_module_path(tmp_path, monkeypatch):
    (tmp_path / "t2i_gcpo_test_module_rm.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(tmp_path)
    reward = load_reward("t2i_gcpo_test_module_rm:Constant", value=4)
    assert reward(*images_and_prompts(2)).tolist() == [4.0, 4.0]
    oracle = load_reward("t2i_gcpo.toy.rewards:ShapesOracle", mode="share")
    assert isinstance(oracle, ShapesOracle) and oracle.mode == "share"


def test_load_reward_from_an_installed_entry_point(tmp_path, monkeypatch):
    (tmp_path / "t2i_gcpo_test_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "t2i_gcpo_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: t2i-gcpo-test-plugin\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[t2i_gcpo.rewards]\nplugin_constant = t2i_gcpo_test_plugin:make_constant\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    reward = load_reward("plugin_constant", value=5)
    assert reward(*images_and_prompts(2)).tolist() == [5.0, 5.0]
    result = CombinedReward([{"name": "plugin_constant", "weight": 2.0}])(*images_and_prompts(2))
    assert result.total.tolist() == [2.0, 2.0]


def test_unknown_rewards_say_what_was_tried_and_the_accepted_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RewardNotFoundError) as err:
        load_reward("no_such_reward")
    message = str(err.value)
    assert "'no_such_reward' was not found" in message
    assert "registered rewards ['aesthetic', 'clip'" in message
    assert "entry points in group 't2i_gcpo.rewards' [" in message
    assert "'shapes-oracle'" in message  # the shapes world's rewards are plug-ins
    for form in ("'path/to/file.py:attr'", "'package.module:attr'", "entry-point group"):
        assert form in message
    with pytest.raises(RewardNotFoundError, match=r"file 'missing.py': does not exist"):
        load_reward("missing.py:score")
    with pytest.raises(RewardNotFoundError, match=r"module 'no_such_pkg.rewards': cannot be"):
        load_reward("no_such_pkg.rewards:score")
    (tmp_path / "my_rm.py").write_text(PLUGIN)
    with pytest.raises(RewardNotFoundError, match=r"has no attribute 'scor'.*'mean_pixel'"):
        load_reward("my_rm.py:scor")
    (tmp_path / "broken_rm.py").write_text("import torch\n\nscale = 1 / 0\n")
    with pytest.raises(RewardError, match=r"'broken_rm.py:score': running .*ZeroDivisionError"):
        load_reward("broken_rm.py:score")
    (tmp_path / "t2i_gcpo_needs_missing.py").write_text("import t2i_gcpo_no_such_dependency\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(ModuleNotFoundError, match="t2i_gcpo_no_such_dependency"):
        load_reward("t2i_gcpo_needs_missing:score")  # a broken plug-in is not "not found"


def test_load_reward_rejects_kwargs_that_do_not_fit(tmp_path, monkeypatch):
    (tmp_path / "my_rm.py").write_text(PLUGIN + "\nready = Constant(1.0)\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RewardError, match=r"'my_rm.py:mean_pixel': keyword arguments \['scale'\]"):
        load_reward("my_rm.py:mean_pixel", scale=2)
    with pytest.raises(RewardError, match=r"'shapes-oracle': keyword arguments \['mod'\] do not"):
        load_reward("shapes-oracle", mod="share")
    with pytest.raises(RewardError, match="already-built Constant; it takes no keyword"):
        load_reward("my_rm.py:ready", value=2)
    assert load_reward("my_rm.py:ready")(*images_and_prompts(1)).tolist() == [1.0]


SIGNATURES = """
def plain(images, prompts, metadata):
    return images.mean(dim=(1, 2, 3)) + len(metadata[0])

def optional_metadata(images, prompts, metadata=None):
    return images.mean(dim=(1, 2, 3)) + len(metadata[0])

def trl_style(images, prompts, **kwargs):
    return images.mean(dim=(1, 2, 3)) + len(kwargs["metadata"][0])

def with_kwargs(images, prompts, metadata, **kwargs):
    return images.mean(dim=(1, 2, 3)) + len(metadata[0]) + kwargs.get("offset", 0.0)

def make(offset=0.0):
    def reward(images, prompts, metadata):
        return images.mean(dim=(1, 2, 3)) + len(metadata[0]) + offset
    return reward

class Scorer:
    def __init__(self, offset=0.0):
        self.offset = offset

    def __call__(self, images, prompts, metadata=None):
        return images.mean(dim=(1, 2, 3)) + len(metadata[0]) + self.offset

def one_argument(images):
    return images.mean(dim=(1, 2, 3))

def make_bad():
    return lambda images: images.mean(dim=(1, 2, 3))
"""


@pytest.mark.parametrize(
    "attr", ["plain", "optional_metadata", "trl_style", "with_kwargs", "make", "Scorer"]
)
def test_every_natural_reward_signature_loads_from_a_file_and_scores(attr, tmp_path, monkeypatch):
    (tmp_path / "signatures.py").write_text(SIGNATURES)
    monkeypatch.chdir(tmp_path)
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    metadata = [{"tag": "x", "n": 1}] * 3  # two keys: each reward adds len(metadata[0]) = 2
    result = CombinedReward([f"signatures.py:{attr}"])(images, ["p"] * 3, metadata)
    torch.testing.assert_close(result.total, images.mean(dim=(1, 2, 3)) + 2.0)
    if attr in ("with_kwargs", "make", "Scorer"):  # config kwargs reach the reward or factory
        shifted = load_reward(f"signatures.py:{attr}", offset=1.0)(images, ["p"] * 3, metadata)
        torch.testing.assert_close(shifted, images.mean(dim=(1, 2, 3)) + 3.0)


def test_a_callable_that_fits_no_form_is_one_line_stating_the_contract(tmp_path, monkeypatch):
    (tmp_path / "signatures.py").write_text(SIGNATURES)
    monkeypatch.chdir(tmp_path)
    for attr in ("one_argument", "make_bad"):
        with pytest.raises(RewardError) as err:
            load_reward(f"signatures.py:{attr}")
        message = str(err.value)
        assert "\n" not in message and f"'signatures.py:{attr}'" in message
        assert "a reward is fn(images, prompts, metadata) -> N scores" in message


def test_register_reward_adds_names_and_refuses_to_overwrite_another_definition():
    cell = "@register_reward('t2i_test_half')\ndef half(images, prompts, metadata):\n"
    cell += "    return images.mean(dim=(1, 2, 3)) / 2\n"
    try:
        for _ in range(2):  # re-running the same definition (a notebook cell) replaces it
            exec(cell, {"register_reward": register_reward, "__name__": "notebook"})
        images, prompts, metadata = images_and_prompts(2)
        scores = load_reward("t2i_test_half")(images, prompts, metadata)
        torch.testing.assert_close(scores, images.mean(dim=(1, 2, 3)) / 2)
    finally:
        REWARDS.registered.pop("t2i_test_half", None)
    with pytest.raises(ValueError, match="'clip' is already registered to reward_models.clip"):
        register_reward("clip")(lambda: None)
    assert REWARDS.registered["clip"].__module__ == "reward_models.clip"


# ---------------------------------------------------------------- CombinedReward


def constant(value):
    return lambda images, prompts, metadata: torch.full((len(images),), float(value))


def test_weighted_sum_and_raw_values_per_reward():
    images, prompts, metadata = images_and_prompts(4)
    mean_pixel = lambda images, prompts, metadata: images.mean(dim=(1, 2, 3))  # noqa: E731
    reward = CombinedReward(
        [
            RewardSpec("pixels", 2.0, reward=mean_pixel),
            RewardSpec("pixels", -1.0, reward=constant(3)),
            {"name": "shapes-oracle", "weight": 0.0, "kwargs": {"mode": "share"}},
        ]
    )
    metadata = [{"tag": "colors", "include": [{"class": "circle", "count": 1, "color": "red"}]}] * 4
    result = reward(images, prompts, metadata)
    assert list(result.per_reward) == ["pixels", "pixels_2", "shapes-oracle"]
    torch.testing.assert_close(result.per_reward["pixels"], images.mean(dim=(1, 2, 3)))
    assert result.per_reward["shapes-oracle"].tolist() == [0.0] * 4  # reported, weight 0
    torch.testing.assert_close(result.total, 2 * images.mean(dim=(1, 2, 3)) - 3)
    assert result.valid.all() and result.num_dropped == 0 and result.total.dtype == torch.float32


def test_lists_and_arrays_of_numbers_are_accepted():
    images, prompts, metadata = images_and_prompts(2)
    reward = CombinedReward(
        [
            RewardSpec("list", reward=lambda *_: [1, 2.5]),
            RewardSpec("array", reward=lambda *_: np.array([0.5, 0.25])),
            RewardSpec("bools", reward=lambda *_: torch.tensor([True, False])),
        ]
    )
    assert reward(images, prompts, metadata).total.tolist() == [2.5, 2.75]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (torch.zeros(2), r"reward 'bad' returned shape \(2,\) for 3 images; expected \(3,\)"),
        (torch.zeros(3, 1), r"'bad' returned shape \(3, 1\) for 3 images"),
        ("0.5", r"'bad' returned str '0.5'; expected a float tensor of shape \(3,\)"),
        (None, r"'bad' returned NoneType None; expected a float tensor"),
        ({"score": 1.0}, r"'bad' returned dict"),
        (["1", "2", "3"], r"'bad' returned list of 3 \(str\); expected 3 real numbers"),
        ([1.0, [2.0, 3.0], 4.0], r"'bad' returned list of 3 \(float, list\), not 3 numbers"),
        (torch.zeros(3, dtype=torch.complex64), r"'bad' returned a torch.complex64 tensor"),
    ],
)
def test_wrong_length_or_type_names_the_reward(output, message):
    reward = CombinedReward(
        [RewardSpec("good", reward=constant(1)), RewardSpec("bad", reward=lambda *_: output)]
    )
    with pytest.raises(RewardError, match=message):
        reward(*images_and_prompts(3))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_an_error_by_default(value):
    bad = lambda images, *_: torch.tensor([0.0, value, 1.0])  # noqa: E731
    reward = CombinedReward([RewardSpec("flaky", reward=bad)])
    with pytest.raises(RewardError, match=r"'flaky' returned non-finite values at samples \{1: "):
        reward(*images_and_prompts(3))
    with pytest.raises(RewardError, match="on_nonfinite='drop'"):
        reward(*images_and_prompts(3))


def test_drop_keeps_training_without_non_finite_samples():
    values = {
        "a": torch.tensor([1.0, float("nan"), 2.0, 3.0]),
        "b": torch.tensor([1.0, 1.0, 1.0, float("inf")]),
    }
    reward = CombinedReward(
        [
            RewardSpec(k, weight=w, reward=lambda *_, k=k: values[k])
            for k, w in (("a", 1.0), ("b", 0.5))
        ],
        on_nonfinite="drop",
    )
    result = reward(*images_and_prompts(4))
    assert result.valid.tolist() == [True, False, True, False]
    assert result.num_dropped == 2
    assert result.total.tolist() == [1.5, 0.0, 2.5, 0.0]
    assert result.per_reward["a"][1].isnan()  # raw values stay raw


def test_an_exception_inside_a_reward_names_it_and_keeps_the_cause():
    def broken(images, prompts, metadata):
        raise KeyError("objects")

    with pytest.raises(RewardError, match=r"reward 'broken' raised KeyError: 'objects'") as err:
        CombinedReward([RewardSpec("broken", reward=broken)])(*images_and_prompts(2))
    assert isinstance(err.value.__cause__, KeyError)
    oracle = CombinedReward(["shapes-oracle"])
    with pytest.raises(
        RewardError, match="'shapes-oracle' raised ValueError: shapes-world metadata"
    ):
        oracle(*images_and_prompts(2))


def test_inputs_are_checked_at_the_boundary():
    reward = CombinedReward([RewardSpec("one", reward=constant(1))])
    images, prompts, metadata = images_and_prompts(2)
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\]; got values in \[-1"):
        reward(images * 2 - 1.5, prompts, metadata)
    with pytest.raises(ValueError, match=r"shape \(N, 3, H, W\); got \(3, 8, 8\)"):
        reward(images[0], prompts, metadata)
    with pytest.raises(ValueError, match="got 2 images but 3 prompts"):
        reward(images, prompts + [""], metadata)
    with pytest.raises(ValueError, match="prompts must be a list of 2 strings"):
        reward(images, "a red circle", metadata)
    with pytest.raises(ValueError, match="metadata must be a list of 2 dicts"):
        reward(images, prompts, [{}])
    assert reward(images, prompts).total.tolist() == [1.0, 1.0]  # metadata may be omitted


class PilMean(RewardModel):
    """A reward that asks for PIL images: mean 8-bit pixel value."""

    name = "pil_mean"
    wants_pil = True

    def __init__(self):
        self.seen = []

    def __call__(self, images, prompts, metadata):
        self.seen.extend(images)
        return [float(np.asarray(image).mean()) for image in images]


def test_rewards_that_want_pil_images_get_them():
    pil = PilMean()
    images, prompts, metadata = images_and_prompts(2)
    tensor_too = RewardSpec("tensor", reward=lambda images, *_: images.mean(dim=(1, 2, 3)))
    result = CombinedReward([RewardSpec("pil", reward=pil), tensor_too])(images, prompts, metadata)
    assert len(pil.seen) == 2
    assert all(isinstance(image, Image.Image) and image.size == (8, 8) for image in pil.seen)
    assert pil.seen[0].mode == "RGB"
    expected = (images * 255).round().mean(dim=(1, 2, 3))
    torch.testing.assert_close(result.per_reward["pil"], expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(result.per_reward["tensor"], images.mean(dim=(1, 2, 3)))
    with pytest.raises(TypeError, match="abstract"):
        RewardModel()


def test_reward_specs_are_validated():
    with pytest.raises(ValueError, match=r"unknown keys \['weigth'\]"):
        CombinedReward([{"name": "shapes-oracle", "weigth": 2.0}])
    with pytest.raises(ValueError, match="weight=nan for reward 'shapes-oracle'; expected finite"):
        RewardSpec("shapes-oracle", weight=float("nan"))
    with pytest.raises(
        ValueError, match="on_nonfinite='skip'; expected one of \\('error', 'drop'\\)"
    ):
        CombinedReward(["shapes-oracle"], on_nonfinite="skip")
    with pytest.raises(ValueError, match="specs is empty"):
        CombinedReward([])


# ---------------------------------------------------------------- README section


def readme_blocks(language: str) -> list[str]:
    """The code blocks of `language` in the README's "Bring your own reward" section."""
    text = README.read_text()
    start = text.index("## Bring your own reward")
    section = text[start : text.index("\n## ", start + 1)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@pytest.mark.parametrize("index", range(len(readme_blocks("python"))))
def test_readme_section_python_examples_run_as_written(index):
    namespace: dict = {}
    exec(
        compile(readme_blocks("python")[index], f"README_SECTION example {index}", "exec"),
        namespace,
    )
    assert namespace["result"].total.shape == (2,)


def test_readme_section_config_names_resolve(tmp_path, monkeypatch):
    (tmp_path / "my_rm.py").write_text(readme_blocks("python")[0])
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load(readme_blocks("yaml")[0])
    reward = CombinedReward(config["rewards"])
    scene = drawn(SceneObject(SHAPES[0], "red", 4, 4, 16))
    result = reward(scene.image[None], [scene.prompt], [scene.metadata])
    assert list(result.per_reward) == [entry["name"] for entry in config["rewards"]]
    assert result.per_reward["shapes-oracle"].tolist() == [1.0]
