"""The shapes world's models: `toy build` end to end on a tiny budget, and the shipped assets
against a fast subset of their quality bars (benchmarks/shapes_quality.py measures them whole)."""

import json
import math
from collections import defaultdict

import numpy as np
import open_clip
import pytest
import torch
from open_clip.pos_embed import get_2d_sincos_pos_embed
from open_clip.tokenizer import HFTokenizer
from safetensors.torch import load_file

from reward_models import Verdict
from reward_models.aesthetic_head import AestheticMLP
from t2i_gcpo.cli import main
from t2i_gcpo.data.geneval import make_record
from t2i_gcpo.evaluation import _add_accuracy, _means, evaluate_policy, first_tokens
from t2i_gcpo.policies import load_policy
from t2i_gcpo.toy import build
from t2i_gcpo.toy import scenes as S
from t2i_gcpo.toy.assets import (
    ASSETS_DIR,
    load_shapes_policy,
    shapes_aesthetic_path,
    shapes_clip_path,
)
from t2i_gcpo.toy.build import (
    PRETRAIN_WEIGHTS,
    aesthetic_rank_accuracy,
    build_tokenizer,
    clip_caption_rank_accuracy,
    clip_image_embeddings,
    code_colours,
    colour_term,
    degraded_pairs,
    mine_negatives,
    object_choice_logprobs,
    object_weights,
    partner_scenes,
    pretrain_policy,
    train_aesthetic,
    train_clip,
    wrong_object_image,
)
from t2i_gcpo.toy.models import (
    janus_policy,
    new_shapes_clip,
    register_open_clip_configs,
    shapes_tokenizer,
)
from t2i_gcpo.toy.oracle import judge_batch
from t2i_gcpo.toy.prompts import shapes_prompt_set
from t2i_gcpo.toy.rewards import ShapesOracle
from t2i_gcpo.toy.tokenizer import PatchVQ

SHIPPED = (ASSETS_DIR / "policy" / "config.json").exists()
needs_assets = pytest.mark.skipif(not SHIPPED, reason="shapes assets not built in this checkout")


def test_toy_build_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    out = tmp_path / "assets"
    args = ["toy", "build", "--out", str(out), "--steps-scale", "0.002", "--texture", "0.5"]
    args += ["--reward-seed", "5"]
    assert main([*args, "--quiet"]) == 0
    assert "wrote the shapes-world assets" in capsys.readouterr().out
    report = json.loads((out / "build_report.json").read_text())
    assert set(report["seconds"]) == {"tokenizer", "policy", "clip", "aesthetic"}
    assert report["texture"] == 0.5 and all(v > 0 for v in report["bytes"].values())
    assert report["seed"] == 0 and report["reward_stage_seed"] == 5
    assert report["held_out_rule"] == "unnamed_colors"
    assert math.isfinite(report["policy"]["colour_term"]) and math.isfinite(report["clip"]["loss"])
    assert not list(tmp_path.glob(".*partial*"))  # written to a hidden folder, then renamed

    policy = load_shapes_policy(root=out)
    assert isinstance(policy.image_tokenizer, PatchVQ) and policy.grid == (12, 12)
    rollout = policy.sample(["a photo of a red circle"], samples_per_prompt=2, cfg_scale=2.0)
    images = policy.decode(rollout.tokens)
    assert images.shape == (2, 3, 48, 48) and images.min() >= 0 and images.max() <= 1
    # decode, encode, decode: the same pixels (a tiny budget's codebook may hold equal codes)
    assert torch.equal(policy.decode(policy.encode(images)), images)
    assert load_policy(str(out / "policy")).image_size == (48, 48)
    clip_model = open_clip.create_model(f"local-dir:{out / 'clip'}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out / 'clip'}")
    assert clip_model.encode_text(tokenizer(["a photo of a red circle"])).shape == (1, 64)
    # the image tower's position embedding was trained from its sine-cosine start, and loading
    # the folder gives the trained one, not the start that open_clip builds the tower with
    saved = load_file(out / "clip" / "open_clip_model.safetensors")
    loaded = clip_model.visual.positional_embedding
    assert torch.equal(loaded, saved["visual.positional_embedding"])
    assert not torch.equal(loaded, new_shapes_clip().visual.positional_embedding)
    head = AestheticMLP(64)
    head.load_state_dict(load_file(out / "aesthetic.safetensors"))
    assert main(["toy", "build", "--out", str(out), "--texture", "2"]) == 2


def test_code_colours_name_each_object_tokens_colour_and_ground_none():
    scenes = S.random_scenes(30, seed=4, texture=1.0)
    images = torch.stack([s.image for s in scenes])
    empty = PatchVQ(torch.zeros(1, 48), S.PATCH, S.IMAGE_SIZE)
    codebook = torch.unique(empty.patches(images).reshape(-1, 48), dim=0)  # every patch exactly
    tokenizer = PatchVQ(codebook, S.PATCH, S.IMAGE_SIZE)
    colours = code_colours(tokenizer)
    palette = list(S.COLORS)
    tokens = tokenizer.encode(images).view(30, 12, 12)
    checked = 0
    for scene, grid in zip(scenes, tokens, strict=True):
        for obj, mask in zip(scene.objects, scene.masks, strict=True):
            touched = mask.reshape(12, 4, 12, 4).any(3).any(1)
            assert (colours[grid[touched]] == palette.index(obj.color)).all()
            checked += int(touched.sum())
        outside = ~S.box_patches(scene.objects)
        assert (colours[grid[outside]] == -1).all()  # textured ground has no colour
    assert checked > 300


def test_colour_term_is_the_cross_entropy_among_pooled_colours():
    colours = torch.tensor([-1, 0, 1, 1])  # code 0 is ground, code 1 colour 0, codes 2-3 colour 1
    logits = torch.tensor([[[5.0, 1.0, 0.0, math.log(3.0)], [9.0, 9.0, 9.0, 9.0]]])
    tokens = torch.tensor([[2, 0]])
    where = torch.tensor([[True, False]])
    # colour 0 pools to 1, colour 1 to log(1 + 3) = log 4, the other four colours have no code
    expected = math.log((math.e + 4.0) / 4.0)
    assert math.isclose(colour_term(logits, tokens, colours, where).item(), expected, rel_tol=1e-6)
    assert colour_term(logits, tokens, colours, torch.zeros(1, 2, dtype=torch.bool)).item() == 0


def test_object_weights_weigh_boxes_and_set_their_starts_apart():
    rng = np.random.default_rng(0)
    # boxes: x 8-16, y 4-12 -> rows 1-2, columns 2-3; x 30-48, y 20-38 -> columns 7-11, rows 5-9
    scene = S.draw([S.SceneObject("square", "red", 8, 4, 8),
                    S.SceneObject("circle", "blue", 30, 20, 18)], rng)  # fmt: skip
    box = torch.zeros(12, 12, dtype=torch.bool)
    box[1:3, 2:4] = True
    box[5:10, 7:12] = True
    weights, starts = object_weights([scene, S.draw([], rng)], 8.0)
    assert torch.equal(weights[0], torch.where(box.flatten(), 8.0, 1.0))
    assert starts[0].nonzero().flatten().tolist() == [1 * 12 + 2, 5 * 12 + 7]
    assert (weights[1] == 1).all() and not starts[1].any()
    calibrated, same = object_weights([scene], 8.0, start_weight=1.0)
    assert torch.equal(same, starts[:1])
    assert torch.equal(calibrated[0], torch.where(box.flatten() & ~starts[0], 8.0, 1.0))
    rows, first_rows = object_weights([scene], 8.0, start_weight=1.0, start_span="row")
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[1, 2:4] = expected[5, 7:12] = True
    assert torch.equal(first_rows[0], expected.flatten())
    assert torch.equal(rows[0], torch.where(box.flatten() & ~expected.flatten(), 8.0, 1.0))
    # "lead": each box up to its first token drawn in an object code; later ones do not count
    drawn = torch.zeros(1, 12, 12, dtype=torch.bool)
    drawn[0, 1, 2] = drawn[0, 5, 9] = drawn[0, 6, 8] = True
    lead, leads = object_weights([scene], 8.0, 1.0, "lead", drawn.flatten(1))
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[1, 2] = True
    expected[5, 7:10] = True
    assert torch.equal(leads[0], expected.flatten())
    assert torch.equal(lead[0], torch.where(box.flatten() & ~expected.flatten(), 8.0, 1.0))
    # a box with nothing drawn in an object code is all lead
    _, nothing = object_weights([scene], 8.0, 1.0, "lead", torch.zeros(1, 144, dtype=torch.bool))
    assert torch.equal(nothing[0], box.flatten())
    with pytest.raises(ValueError, match="needs `drawn`"):
        object_weights([scene], 8.0, 1.0, "lead")
    with pytest.raises(ValueError, match="start_span"):
        object_weights([scene], 8.0, 1.0, "rows")


def test_object_choice_logprobs_are_the_tokens_among_the_object_codes():
    object_codes = torch.tensor([False, True, True, True])
    logits = torch.tensor([[5.0, 0.0, math.log(2.0), math.log(5.0)]])
    # among the object codes, probabilities 1/8, 2/8 and 5/8, whatever the ground code's logit
    choice = object_choice_logprobs(logits, torch.tensor([2]), object_codes)
    assert math.isclose(choice.item(), math.log(2.0 / 8.0), rel_tol=1e-6)
    # with the log-probability that an object code is drawn, it adds up to the token's
    start = logits.log_softmax(-1)[0, 1:].logsumexp(-1)
    assert math.isclose((choice + start).item(), logits.log_softmax(-1)[0, 2].item(), rel_tol=1e-6)


def test_pretraining_weighs_which_object_code_apart_from_whether_an_object(monkeypatch):
    tokenizer, _ = build_tokenizer(64, 2, seed=0)
    picked = {}
    split = build.object_choice_logprobs

    def counted(logits, tokens, object_codes):
        picked[mode].append(len(tokens))
        return split(logits, tokens, object_codes)

    monkeypatch.setattr(build, "object_choice_logprobs", counted)
    modes = {
        "start": {"start_weight": 1.0, "start_span": "token"},
        "lead": {"start_weight": 1.0, "start_span": "lead"},
        "choice": {"choice_only": True},
    }
    for mode, kwargs in modes.items():
        picked[mode] = []
        policy = janus_policy("shapes-janus", seed=0, image_tokenizer=tokenizer)
        before = [p.detach().clone() for p in policy.trainable_parameters()]
        report = pretrain_policy(
            policy, 2, batch_size=16, n_scenes=64, flat_share=0.0, progress=False, **kwargs
        )
        assert len(picked[mode]) == 2 and math.isfinite(report["nll"])
        assert any(
            not torch.equal(a, b)
            for a, b in zip(before, policy.trainable_parameters(), strict=True)
        )
    # squares start at their box's corner in their colour's code, so some box starts are split;
    # with choice_only every token drawn in an object's code is, many per object
    assert sum(picked["start"]) > 0 and sum(picked["choice"]) > 10 * sum(picked["start"])
    # "lead" splits every drawn object's first token in an object code, wherever it lies in its
    # box: on the same batches, more than the box corners (circles and crosses start mid-row)
    assert sum(picked["lead"]) > sum(picked["start"])


def test_pretraining_with_the_colour_term_trains_on_it():
    tokenizer, _ = build_tokenizer(64, 2, seed=0)
    policy = janus_policy("shapes-janus", seed=0, image_tokenizer=tokenizer)
    before = [p.detach().clone() for p in policy.trainable_parameters()]
    report = pretrain_policy(
        policy, 2, batch_size=16, n_scenes=64, colour_weight=1.0, progress=False
    )
    # the named colour among six at near-uniform logits: about log 6 nats
    assert 1.0 < report["colour_term"] < 2.5 and math.isfinite(report["nll"])
    assert any(
        not torch.equal(a, b) for a, b in zip(before, policy.trainable_parameters(), strict=True)
    )


def test_wrong_object_image_redraws_one_object_as_its_prompt_rules_out():
    scenes = S.random_scenes(40, 5, "train")
    rng = np.random.default_rng(0)
    for scene in scenes:
        wrong = wrong_object_image(scene, rng)
        changed = (wrong != scene.image).any(0)
        inside = S.box_patches(scene.objects).repeat_interleave(S.PATCH, 0)
        assert changed.any() and not (changed & ~inside.repeat_interleave(S.PATCH, 1)).any()
        # one object no longer matches the prompt; the oracle reads the prompt as broken
        assert not judge_batch(wrong[None], [scene.metadata])[0].correct, scene.prompt
    assert wrong_object_image(S.draw([], rng), rng) is None


def test_pretraining_with_wrong_prefixes_scores_the_right_scene_on_a_wrong_input(monkeypatch):
    tokenizer, _ = build_tokenizer(64, 2, seed=0)
    policy = janus_policy("shapes-janus", seed=0, image_tokenizer=tokenizer)
    seen = []
    token_logits = policy.token_logits
    monkeypatch.setattr(
        policy, "token_logits", lambda p, t: seen.append(t.clone()) or token_logits(p, t)
    )
    before = [p.detach().clone() for p in policy.trainable_parameters()]
    report = pretrain_policy(
        policy, 1, batch_size=16, n_scenes=16, wrong_prefix_share=1.0, flat_share=0.0,
        caption_dropout=0.0, progress=False,
    )  # fmt: skip
    scenes = S.random_scenes(16, 1, "train", weights=PRETRAIN_WEIGHTS)
    clean = policy.encode(torch.stack([s.image for s in scenes]))
    # every input (the scenes' order is the pool's permutation) differs from every clean scene
    # only inside the boxes; the loss stays finite and the weights move
    assert len(seen) == 1 and seen[0].shape == clean.shape
    assert not any(torch.equal(row, c) for row in seen[0] for c in clean)
    assert math.isfinite(report["nll"])
    assert any(
        not torch.equal(a, b) for a, b in zip(before, policy.trainable_parameters(), strict=True)
    )


def test_new_shapes_clip_starts_its_position_embedding_at_2d_sines_and_trains_it():
    model = new_shapes_clip()
    embedding = model.visual.positional_embedding
    width, grid = embedding.shape[1], model.visual.grid_size[0]
    start = get_2d_sincos_pos_embed(width, grid, cls_token=True)
    assert grid == 6 and torch.equal(embedding.detach(), torch.from_numpy(start).float())
    assert embedding.requires_grad
    # the column and the row in separate channels: over the grid of patches (after the class
    # token), the first half of the channels changes only from column to column, the second
    # half only from row to row
    patches = embedding.detach()[1:].view(grid, grid, width)
    half = width // 2
    assert torch.equal(patches[:1, :, :half].expand(grid, -1, -1), patches[:, :, :half])
    assert torch.equal(patches[:, :1, half:].expand(-1, grid, -1), patches[:, :, half:])
    assert not torch.equal(patches[0, 0], patches[0, 1])
    assert not torch.equal(patches[0, 0], patches[1, 0])


def test_clip_training_learns_to_score_degraded_copies_below_clean_images(tmp_path):
    shapes_tokenizer(append_eos=True).save_pretrained(tmp_path)
    tokenizer = HFTokenizer(str(tmp_path), context_length=16)
    torch.manual_seed(1)
    model = new_shapes_clip()
    report = train_clip(
        model, tokenizer, 40, batch_size=32, n_scenes=256, degraded_per_step=32, progress=False
    )
    # the clean image against its degraded copy, with their prompt: log 2 nats at chance,
    # 0.35 measured after these 40 steps
    assert report["degraded_term"] < 0.55 and math.isfinite(report["loss"])


def test_partner_scenes_break_one_thing_the_prompt_names():
    scenes = S.random_scenes(60, 4, "any")
    partners = partner_scenes(scenes, np.random.default_rng(0))
    again = partner_scenes(scenes, np.random.default_rng(0))
    assert [p.prompt for p in partners] == [p.prompt for p in again]
    assert all(torch.equal(p.image, q.image) for p, q in zip(partners, again, strict=True))
    for scene, partner in zip(scenes, partners, strict=True):
        assert partner.metadata in S.hard_negatives(scene.metadata)
    # each partner is right for its own prompt and wrong for its scene's
    images = torch.stack([p.image for p in partners])
    assert all(v.correct for v in judge_batch(images, [p.metadata for p in partners]))
    assert not any(v.correct for v in judge_batch(images, [s.metadata for s in scenes]))
    # relations, swaps and counts are drawn as often as class changes: position scenes' partners
    # are mostly relation or swap changes (2 of the 3 kinds it allows)
    position = [
        (s, p) for s, p in zip(scenes, partners, strict=True) if s.metadata["tag"] == "position"
    ]
    same_classes = [
        {r["class"] for r in s.metadata["include"]} == {r["class"] for r in p.metadata["include"]}
        for s, p in position
    ]
    assert len(position) >= 6 and sum(same_classes) >= len(position) / 3


def test_mined_negatives_are_the_ones_the_model_scores_highest(tmp_path):
    register_open_clip_configs()
    shapes_tokenizer(append_eos=True).save_pretrained(tmp_path)
    tokenizer = HFTokenizer(str(tmp_path), context_length=16)
    torch.manual_seed(0)
    model = open_clip.create_model("shapes-clip").eval()
    scenes = S.random_scenes(2, 3, "any", categories=("position", "colors"))
    options = [[n["prompt"] for n in S.hard_negatives(s.metadata)] for s in scenes]
    # each image's features are those of one of its options (the 5th, the 2nd): that option
    # scores 1, the highest cosine there is, so it must come first
    with torch.no_grad():
        targets = model.encode_text(tokenizer([options[0][4], options[1][1]]))
    features = torch.nn.functional.normalize(targets, dim=-1)
    chosen = mine_negatives(model, tokenizer, features, options, 3, 1, np.random.default_rng(0))
    assert len(chosen) == 6
    assert chosen[0] == options[0][4] and chosen[3] == options[1][1]
    # the other two of each are drawn from the rest, without repeats (8 options each)
    assert len(set(chosen[:3])) == 3 and set(chosen[1:3]) <= set(options[0]) - {options[0][4]}
    assert len(set(chosen[3:])) == 3 and set(chosen[4:]) <= set(options[1]) - {options[1][1]}
    # with all three mined, they are the three highest-scoring options, best first
    with torch.no_grad():
        text = torch.nn.functional.normalize(model.encode_text(tokenizer(options[0])), dim=-1)
    best = (features[0] @ text.T).argsort(descending=True)[:3].tolist()
    top = mine_negatives(
        model, tokenizer, features[:1], options[:1], 3, 3, np.random.default_rng(0)
    )
    assert top == [options[0][j] for j in best]


def test_clip_training_with_pairs_and_mined_negatives_checks_their_numbers(tmp_path):
    shapes_tokenizer(append_eos=True).save_pretrained(tmp_path)
    tokenizer = HFTokenizer(str(tmp_path), context_length=16)
    model = new_shapes_clip()
    with pytest.raises(ValueError, match="pairs_per_step=20"):
        train_clip(model, tokenizer, 4, batch_size=32, pairs_per_step=20, progress=False)
    with pytest.raises(ValueError, match="mined_negatives=4"):
        train_clip(model, tokenizer, 4, batch_size=32, mined_negatives=4, progress=False)
    before = [p.detach().clone() for p in model.parameters()]
    report = train_clip(
        model, tokenizer, 4, batch_size=32, n_scenes=64, pairs_per_step=16, mined_negatives=2,
        progress=False,
    )  # fmt: skip
    assert math.isfinite(report["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@needs_assets
def test_shipped_tokenizer_keeps_the_oracle_right_in_every_category():
    policy = load_policy("shapes")
    assert policy.grid == (12, 12) and policy.image_size == (48, 48)
    scenes = S.random_scenes(120, seed=5, split="eval")
    recon = policy.decode(policy.encode(torch.stack([s.image for s in scenes])))
    verdicts = judge_batch(recon, [s.metadata for s in scenes])
    assert all(v.correct for v in verdicts)


@needs_assets
def test_shipped_policy_follows_classes_and_colours_on_held_out_prompts():
    # shapes_quality.py (8 samples a prompt) measures GenEval 47.4%, colors 51.6%, color_attr
    # 36.7%, and misses the 10-85% band on single_object (96.9%); checked at what this
    # build does, on 2 samples a prompt (44.3%, colors 37.5%, color_attr 31.2%)
    figures = evaluate_policy(
        load_policy("shapes"),
        shapes_prompt_set("eval"),
        samples_per_prompt=2,
        judge=ShapesOracle(),
        negative_views=(),
    )
    assert 0.35 <= figures["oracle/geneval"] <= 0.6, figures
    assert figures["oracle/single_object"] >= 0.75 and figures["oracle/colors"] >= 0.25, figures
    assert figures["oracle/color_attr"] >= 0.15, figures
    # it draws a few objects beyond the prompt's (policy_stage.py --failures: 0.3-0.8 a category)
    assert 0.0 <= figures["objects/extra"] <= 2.0, figures


def test_objects_beyond_the_prompt_are_counted_where_the_judge_says_how_many_it_found():
    none = torch.zeros(0, 48, 48, dtype=torch.bool)
    pair = make_record(
        "two_object", [{"class": "circle", "count": 1}, {"class": "cross", "count": 1}]
    )
    three = make_record("counting", [{"class": "square", "count": 3}])
    verdicts = [
        Verdict(True, none, "", {"found": 4}),  # two asked, four found: 2 extra
        Verdict(False, none, "too few", {"found": 2}),  # three asked, two found: -1
        Verdict(False, none, "no count"),  # a judge that does not say: left out
    ]
    values = defaultdict(list)
    _add_accuracy(values, verdicts, [pair, three, three])
    figures = _means(values)
    assert figures["objects/extra"] == 0.5
    assert figures["oracle/two_object"] == 1.0 and figures["oracle/counting"] == 0.0


@needs_assets
def test_eval_command_reports_the_objects_beyond_the_prompt(tmp_path, capsys):
    prompts = tmp_path / "two.jsonl"
    records = [r for r in shapes_prompt_set("eval") if r.metadata["tag"] == "two_object"][:2]
    lines = [json.dumps({"prompt": r.prompt, "metadata": r.metadata}) for r in records]
    prompts.write_text("\n".join(lines) + "\n")
    command = ["eval", "--prompts", str(prompts), "--judge", "shapes-oracle",
               "--samples-per-prompt", "2", "--negatives", "null", "--device", "cpu"]  # fmt: skip
    assert main(command) == 0
    results = json.loads(capsys.readouterr().out)
    # found minus asked, an image: at least -2 (nothing found for two asked)
    assert set(results["objects"]) == {"extra"} and results["objects"]["extra"] >= -2.0


def test_first_tokens_keeps_each_rows_first_redrawn_token():
    moved = torch.tensor([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 1]], dtype=torch.bool)
    expected = torch.tensor([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(first_tokens(moved), expected)


@needs_assets
def test_blame_credit_points_at_the_redrawn_object():
    # pretrained with wrong prefixes, the policy keeps reading the prompt past a wrong object's
    # first token, so the credit ranks all its redrawn tokens above the rest, not only the first
    # (shapes_quality.py: 0.955 over all redrawn tokens, 0.950 on the first; a policy pretrained
    # on clean prefixes alone scored 0.491 and 0.915; here 0.935 on two_object prompts)
    records = [r for r in shapes_prompt_set("eval") if r.metadata["tag"] == "two_object"]
    figures = evaluate_policy(
        load_policy("shapes"),
        records,
        samples_per_prompt=4,
        judge=ShapesOracle(),
        negative_views=("null",),
    )
    assert figures["credit/null/blame_auroc"] >= 0.7, figures
    assert figures["credit/null/object_auroc"] >= 0.5, figures


@needs_assets
def test_shipped_clip_and_aesthetic_head_rank_the_truth_first():
    clip_dir = shapes_clip_path()
    clip_model = open_clip.create_model(f"local-dir:{clip_dir}").eval()
    tokenizer = HFTokenizer(str(clip_dir), context_length=clip_model.context_length)
    # shapes_quality.py's 600 eval-split scenes (a smaller sample holds too few of a category)
    ranking = clip_caption_rank_accuracy(clip_model, tokenizer, S.random_scenes(600, 11, "eval"))
    # the bar: 90% in every category (measured: position 96.6%, counting 97.4%, the others
    # 99.1-100%). The CLIP before the sine-cosine start of its image tower's position embedding
    # ranked "above" over "left of" and "below" over "right of" on most scenes (position 53.9%).
    assert all(ranking[tag] >= 0.90 for tag in S.CATEGORIES), ranking
    head = AestheticMLP(64)
    head.load_state_dict(load_file(shapes_aesthetic_path()))
    # the bar: 90% (measured: 90.4%; the same CLIP with the head regressed onto 7 and 3, 86.5%)
    assert aesthetic_rank_accuracy(head.eval(), clip_model) >= 0.90


@needs_assets
def test_aesthetic_head_ranks_its_pairs_and_is_rescaled_to_seven_and_three():
    clip_model = open_clip.create_model(f"local-dir:{shapes_clip_path()}").eval()
    torch.manual_seed(0)
    head = AestheticMLP(64)
    report = train_aesthetic(head, clip_model, steps=150, n_scenes=256, seed=5, progress=False)
    clean, degraded = degraded_pairs(256, 5)
    with torch.no_grad():
        good = head(clip_image_embeddings(clip_model, clean))
        bad = head(clip_image_embeddings(clip_model, degraded))
    # the ranking loss fixes no scale; the last layer maps the pairs' means onto 7 and 3
    assert good.mean().item() == pytest.approx(7.0, rel=1e-4)
    assert bad.mean().item() == pytest.approx(3.0, rel=1e-4)
    assert report["train_rank_accuracy"] == pytest.approx((good > bad).float().mean().item())
    assert report["train_rank_accuracy"] >= 0.8
