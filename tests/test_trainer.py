"""The trainer's pieces (negatives, prompt order, schedule, checkpoints, metrics), its credit
stage, and a two-process run."""

import json
import math

import pytest
import torch
from accelerate import debug_launcher
from accelerate.state import AcceleratorState, GradientState
from tolerances import SAME_MATHS

from t2i_gcpo import checkpoint as ckpt
from t2i_gcpo.algos import credit_weights, token_divergence
from t2i_gcpo.config import build_config
from t2i_gcpo.data import PromptOrder
from t2i_gcpo.data.negatives import resolve_negatives, swap_caption
from t2i_gcpo.data.prompts import PromptRecord, resolve_prompts
from t2i_gcpo.logging_utils import MetricsLog, combine_stats, finite_metrics, short_names
from t2i_gcpo.optim import lr_factor
from t2i_gcpo.toy.models import tiny_janus_policy
from t2i_gcpo.toy.scenes import COLORS
from t2i_gcpo.trainer import StepBatch, Trainer

REDNESS = """
def redness(images, prompts, metadata):
    return images[:, 0].mean(dim=(1, 2)) - images[:, 1:].mean(dim=(1, 2, 3))
"""


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    tiny_janus_policy(grid=4, seed=0).save(root / "tiny")
    (root / "redness.py").write_text(REDNESS, encoding="utf-8")
    return {"policy": str(root / "tiny"), "reward": f"{root / 'redness.py'}:redness"}


def tiny_config(assets, out, **sections):
    """A TrainConfig of the tiny policy; `sections` update the named sections."""
    raw = {
        "policy": {"name": assets["policy"]},
        "prompts": {"eval": None},
        "rewards": {"models": [assets["reward"]]},
        "rollout": {"group_size": 4, "prompts_per_step": 2},
        "optim": {"steps": 2, "lr": 1e-3, "updates_per_rollout": 1},
        "logging": {"output_dir": str(out), "trackers": "none", "progress_bar": False,
                    "sample_every": 0, "heatmap_every": 0},
    }  # fmt: skip
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return build_config(raw)


# ---------------------------------------------------------------------------------------------
# Negatives, prompt order, schedule
# ---------------------------------------------------------------------------------------------


def test_swap_changes_one_word_of_the_prompt_deterministically():
    prompt = "a red circle at the top left"
    swapped = swap_caption(prompt, seed=0)
    words, original = swapped.split(), prompt.split()
    assert len(words) == len(original)
    assert sum(a != b for a, b in zip(words, original, strict=True)) == 1
    assert swap_caption(prompt, seed=0) == swapped
    seen = {swap_caption(prompt, seed=s) for s in range(40)}
    assert "a red circle at the bottom left" in seen and "a red circle at the top right" in seen
    assert "a blue circle at the top left" in seen and "a red square at the top left" in seen
    two = "a red circle and a blue square"
    for seed in range(10):
        colours = [w for w in swap_caption(two, seed).split() if w in COLORS]
        assert len(set(colours)) == len(colours)  # never a colour the prompt already names
    assert swap_caption("a photo of two circles", seed=3).split()[3] in ("one", "three", "two")
    assert "an orange circle" in {swap_caption("a red circle", s) for s in range(60)}
    assert swap_caption("Red apple", seed=0).split()[0].istitle()
    with pytest.raises(ValueError, match="cannot derive a negative caption from prompt 'hello'"):
        swap_caption("hello")


def test_resolve_negatives_per_mode():
    records = [PromptRecord("a red circle", "a blue circle"), PromptRecord("a green square")]
    assert resolve_negatives(records, "null") is None
    swapped = resolve_negatives(records, "swap", seed=3)
    assert swapped == [swap_caption("a red circle", 3), swap_caption("a green square", 3)]
    with pytest.raises(ValueError, match=r"p.jsonl: prompt 2 \('a green square'\) has no"):
        resolve_negatives(records, "caption", source="p.jsonl")
    assert resolve_negatives(records[:1], "caption") == ["a blue circle"]
    shapes = resolve_prompts("shapes:train")
    assert resolve_negatives(shapes, "caption") == [r.negative_prompt for r in shapes]
    # attribute: GenEval metadata where a record has it, the perturber where it has none
    mixed = [*shapes, PromptRecord("two red cats")]
    attribute = resolve_negatives(mixed, "attribute", seed=1)
    assert attribute[-1] == swap_caption("two red cats", 1)
    assert all(n != r.prompt for n, r in zip(attribute, mixed, strict=True))
    with pytest.raises(ValueError, match=r"prompt 1: cannot derive .* prompt 'hello there'"):
        resolve_negatives([PromptRecord("hello there")], "attribute")


def test_prompt_order_is_a_seeded_permutation_per_epoch_and_resumes():
    order = PromptOrder(5, seed=1)
    first, second = order.take(5), order.take(5)
    assert sorted(first) == sorted(second) == [0, 1, 2, 3, 4]
    assert first != second and order.epoch == 1
    assert PromptOrder(5, seed=1).take(10) == first + second
    assert PromptOrder(5, seed=2).take(5) != first

    straight = PromptOrder(7, seed=0)
    straight.take(9)
    resumed = PromptOrder(7, seed=0)
    resumed.load_state_dict(json.loads(json.dumps(straight.state_dict())))
    assert resumed.take(12) == straight.take(12)
    with pytest.raises(ValueError, match="covers 7 prompts but prompts.train now holds 6"):
        PromptOrder(6).load_state_dict(straight.state_dict())


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    assert [lr_factor(s, 10, "constant", warmup_steps=2) for s in range(4)] == [0.5, 1, 1, 1]
    cosine = [lr_factor(s, 5, "cosine", min_lr_ratio=0.1) for s in range(5)]
    assert cosine[0] == 1.0 and cosine[-1] == pytest.approx(0.1)
    assert cosine[2] == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: the mean of 1 and 0.1
    assert all(a > b for a, b in zip(cosine, cosine[1:], strict=False))
    warm = [lr_factor(s, 6, "cosine", warmup_steps=2, min_lr_ratio=0.0) for s in range(6)]
    assert warm[:3] == [0.5, 1.0, 1.0] and warm[-1] == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, 1, "cosine") == 1.0  # a one-step run
    with pytest.raises(ValueError, match="schedule='step' is not supported"):
        lr_factor(0, 3, "step")


# ---------------------------------------------------------------------------------------------
# Checkpoints and metrics
# ---------------------------------------------------------------------------------------------


def fake_checkpoint(out, step, complete=True):
    folder = ckpt.checkpoints_root(out) / ckpt.checkpoint_name(step)
    folder.mkdir(parents=True)
    if complete:
        ckpt.write_state(folder, {"step": step})
    return folder


def test_checkpoints_list_only_complete_folders_and_prune_the_oldest(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path) is None
    for step in (2, 10, 4):
        fake_checkpoint(tmp_path, step)
    fake_checkpoint(tmp_path, 12, complete=False)  # a crash while writing
    ckpt.staging_dir(tmp_path, 14).mkdir()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [2, 4, 10]
    assert ckpt.latest_checkpoint(tmp_path).name == "step_000010"
    removed = ckpt.prune(tmp_path, keep_last=2)
    assert [p.name for p in removed] == ["step_000002"]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4, 10]

    staging = ckpt.staging_dir(tmp_path, 10)
    staging.mkdir()
    ckpt.write_state(staging, {"step": 10, "new": True})
    final = ckpt.publish(staging, tmp_path, 10)
    assert ckpt.read_state(final) == {"step": 10, "new": True} and not staging.exists()

    ckpt.save_tensors({"state": {0: {"step": torch.tensor(3.0)}}, "lr": [0.1]}, tmp_path / "o.pt")
    assert ckpt.load_tensors(tmp_path / "o.pt")["state"][0]["step"] == 3.0
    with pytest.raises(FileNotFoundError, match="checkpoint is incomplete"):
        ckpt.load_tensors(tmp_path / "missing.pt")


def test_metrics_log_keeps_finite_numbers_and_truncates_on_resume(tmp_path, capsys):
    log = MetricsLog(tmp_path / "m.jsonl")
    log.append(1, {"a": torch.tensor(0.5), "b": float("nan"), "ok": True, "n": 3})
    assert "not logging non-finite metrics ['b']" in capsys.readouterr().err
    for step in (2, 3):
        log.append(step, {"a": float(step)})
    assert log.read()[0] == {"step": 1, "a": 0.5, "ok": 1, "n": 3}
    resumed = MetricsLog(tmp_path / "m.jsonl", keep_until_step=2)
    assert [r["step"] for r in resumed.read()] == [1, 2]
    assert finite_metrics({"x": "text", "y": math.inf}) == {}


def test_statistics_combine_across_processes_by_kind():
    combined = combine_stats(
        [{"loss": [1.0, 3.0], "ratio_max": [1.1], "credit_min": [0.2]},
         {"loss": [5.0], "ratio_max": [1.3, 1.2], "credit_min": [0.1], "kl_mean": [0.4]}]
    )  # fmt: skip
    assert combined == {"credit_min": 0.1, "kl_mean": 0.4, "loss": 3.0, "ratio_max": 1.3}
    assert short_names(["clip", "a/b.py:score", "m.x:score"]) == {
        "clip": "clip", "a/b.py:score": "score", "m.x:score": "score_2"}  # fmt: skip


def test_step_batch_minibatches_slice_every_field():
    batch = StepBatch(
        prompts=list("abcdef"),
        tokens=torch.arange(12).view(6, 2),
        old_logp=torch.zeros(6, 2),
        advantages=torch.arange(6.0),
        mask=torch.ones(6, 2, dtype=torch.bool),
        credit=torch.ones(6, 2),
        ref_logp=None,
    )
    parts = list(batch.minibatches(4))
    assert [p.prompts for p in parts] == [list("abcd"), list("ef")]
    assert torch.equal(parts[1].tokens, torch.tensor([[8, 9], [10, 11]]))
    assert parts[1].advantages.tolist() == [4.0, 5.0] and parts[1].ref_logp is None
    assert parts[0].credit.shape == (4, 2)


# ---------------------------------------------------------------------------------------------
# The credit stage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg_negative", ["algo", "null"])
def test_credit_reuses_the_recorded_branch_only_when_cfg_sampled_with_it(
    assets, tmp_path, cfg_negative
):
    config = tiny_config(
        assets,
        tmp_path / "run",
        algo={"negative": "caption", "normalization": "linear"},
        rollout={"cfg_negative": cfg_negative},
    )
    trainer = Trainer(config)
    indices = trainer.draw_prompts()
    rollout = trainer.sample(indices)
    captions = trainer.step_negatives(indices)
    per_sample = [captions[i] for i in rollout.prompt_index.tolist()]
    with torch.no_grad():
        caption_logp = trainer.policy.token_logprobs(rollout.sample_prompts, rollout.tokens,
                                                     per_sample)  # fmt: skip
    expected = credit_weights(
        token_divergence(rollout.logp_pos, caption_logp, "k3"), normalization="linear"
    )
    credit = trainer.credit(rollout, indices)
    # the recorded and the teacher-forced log-probs differ by float32 rounding (SAME_MATHS);
    # k3 and the linear normalization can amplify it tenfold, a wrong negative moves it > 1e-2
    torch.testing.assert_close(credit, expected, rtol=10 * SAME_MATHS["rtol"], atol=1e-3)
    if cfg_negative == "algo":  # CFG guided against the captions: their log-probs are recorded
        assert rollout.negative_prompts == captions
        torch.testing.assert_close(rollout.logp_neg, caption_logp, **SAME_MATHS)
    else:  # CFG guided against the null prompt: the caption credit needs its own pass
        assert rollout.negative_prompts is None
        null_credit = credit_weights(
            token_divergence(rollout.logp_pos, rollout.logp_neg, "k3"), normalization="linear"
        )
        assert not torch.allclose(credit, null_credit, atol=1e-2)


def test_uniform_credit_is_none_and_advantages_drop_whole_groups(assets, tmp_path):
    try:
        trainer = Trainer(
            tiny_config(
                assets, tmp_path / "run", algo={"preset": "dapo"}, policy={"cpu_threads": 2}
            )
        )
        assert torch.get_num_threads() == 2  # policy.cpu_threads is applied
    finally:
        torch.set_num_threads(1)
    indices = trainer.draw_prompts()
    assert trainer.credit(trainer.sample(indices), indices) is None

    from reward_models.combine import RewardResult

    total = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])
    valid = torch.ones(8, dtype=torch.bool)
    advantages, keep = trainer.advantages(RewardResult(total, {}, valid, 0))
    assert keep.tolist() == [True] * 4 + [False] * 4  # the flat group carries no signal
    assert advantages[4:].tolist() == [0.0] * 4
    centred = total[:4] - total[:4].mean()
    assert torch.allclose(advantages[:4], centred / (total[:4].std() + 1e-4))

    valid[1] = False  # a non-finite reward drops its whole group
    _, keep = trainer.advantages(RewardResult(total, {}, valid, 1))
    assert not keep.any()


# ---------------------------------------------------------------------------------------------
# Two processes
# ---------------------------------------------------------------------------------------------


def _two_process_worker(config, result_dir):
    """One of the debug_launcher's processes: train, then save this rank's parameters."""
    AcceleratorState._reset_state(reset_partial_state=True)  # the parent's state came by fork
    GradientState._reset_state()
    torch.set_num_threads(1)
    trainer = Trainer(config)
    rank, world = trainer.accelerator.process_index, trainer.accelerator.num_processes
    trainer.train()
    parameters = [p.detach().clone() for p in trainer.policy.trainable_parameters()]
    torch.save({"world": world, "parameters": parameters}, f"{result_dir}/rank{rank}.pt")


def test_two_processes_keep_identical_parameters_and_gather_metrics(assets, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # else accelerate gives each process 2 threads
    out = tmp_path / "run"
    config = tiny_config(assets, out)  # 2 prompts per step: one per process
    debug_launcher(_two_process_worker, args=(config, str(tmp_path)), num_processes=2)

    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    initial = tiny_janus_policy(grid=4, seed=0).trainable_parameters()
    for a, b in zip(ranks[0]["parameters"], ranks[1]["parameters"], strict=True):
        assert torch.equal(a, b)  # DDP averaged the gradients of different prompts
    assert any(not torch.equal(a, s) for a, s in zip(ranks[0]["parameters"], initial, strict=True))

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]  # written once, by the main process
    assert all(r["samples"] == 8 for r in records)  # 4 samples from each process
    assert ckpt.read_state(ckpt.latest_checkpoint(out))["num_processes"] == 2
    assert sorted(p.name for p in ckpt.latest_checkpoint(out).glob("rng_rank*.pt")) == [
        "rng_rank0.pt", "rng_rank1.pt"]  # fmt: skip


def test_the_probes_attribute_negative_draws_on_the_prompt_sets_classes(assets, tmp_path):
    # a lone class names no other class itself; its negative takes one from the prompt sets
    for probe in ("a photo of a circle", "a photo of a triangle"):  # a training, a held-out one
        config = tiny_config(
            assets, tmp_path / "run", prompts={"eval": "shapes:eval"},
            algo={"negative": "attribute"}, logging={"heatmap_every": 1, "probe_prompt": probe},
        )  # fmt: skip
        (negative,) = Trainer(config).probe_negatives
        others = {s for s in ("circle", "square", "triangle", "cross") if s not in probe}
        assert negative in {f"a photo of a {s}" for s in others}


def test_a_signal_asks_for_a_stop_and_a_second_ctrl_c_stops_at_once(assets, tmp_path):
    trainer = Trainer(tiny_config(assets, tmp_path / "run"))
    assert not trainer.should_stop()
    trainer.request_stop("SIGTERM")
    assert trainer.should_stop() and trainer.stop_reason == "SIGTERM"
    trainer.request_stop("SIGTERM")  # repeated SIGTERMs only ask again
    with pytest.raises(KeyboardInterrupt):
        trainer.request_stop("SIGINT")
