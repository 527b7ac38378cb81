"""`t2i-gcpo train / sample / eval` called through main([...]) on a tiny random Janus policy."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tolerances import FLOAT32_EPS, LOGPROB_BOUND
from training_runs import train_args, write_run_assets

from t2i_gcpo.cli import main


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    """A saved tiny policy and a reward file, shared by the tests of this module."""
    return write_run_assets(tmp_path_factory.mktemp("assets"))


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def final_weights(out: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(out / "checkpoints" / f"step_{step:06d}" / "policy" / "model.safetensors")


def assert_finite_numbers(records: list[dict]) -> None:
    for record in records:
        for key, value in record.items():
            assert isinstance(value, int | float) and not isinstance(value, bool), key
            assert value == value and abs(value) != float("inf"), key


# ---------------------------------------------------------------------------------------------
# Training runs
# ---------------------------------------------------------------------------------------------


def test_three_step_run_trains_and_writes_its_run_folder(assets, tmp_path):
    out = tmp_path / "run"
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(
        "\n".join(
            json.dumps({"prompt": p, "metadata": {"tag": "single_object", "objects": [o]}})
            for p, o in [
                ("a red circle at the top left", {"color": "red", "shape": "circle",
                                                  "position": "top left"}),
                ("a blue square at the bottom right", {"color": "blue", "shape": "square",
                                                       "position": "bottom right"}),
            ]
        )
    )  # fmt: skip
    args = train_args(assets, out, 3, "redness", "--logging.trackers", "tensorboard",
                      "--logging.sample_every", "2", "--logging.eval_every", "3",
                      "--prompts.eval", str(eval_file), "--checkpoint.every", "1",
                      "--logging.eval_judge", f"{assets['rewards']}:RedJudge",
                      "--checkpoint.keep_last", "2", "--logging.heatmap_every", "2")  # fmt: skip
    assert main(args) == 0

    records = read_metrics(out)
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    assert_finite_numbers(records)
    figures = ("object_auroc", "precision_at_k", "chance_at_k", "localization")
    assert set(records[0]) == {
        "step", "eval/oracle/all", "eval/oracle/single_object", "eval/oracle/geneval",
        "eval/reward/mean", "eval/reward/redness",
        *(f"eval/credit/null/{f}" for f in figures), *(f"probe/{f}" for f in figures)}  # fmt: skip
    assert 0 <= records[0]["eval/credit/null/object_auroc"] <= 1
    assert "probe/object_auroc" in records[2]
    assert "eval/oracle/all" in records[3] and "eval/oracle/all" not in records[1]
    for record in records[1:]:
        assert record["samples"] == 8 and record["update/skipped"] == 0
        assert record["grad_norm"] > 0
        # old_logp is the rollout's recorded log-prob: the first update's ratio is 1.
        assert record["update/first_logratio_abs_max"] < LOGPROB_BOUND
    assert records[1]["lr"] > records[3]["lr"]  # cosine decay

    before = load_file(assets["policy"] / "model.safetensors")
    after = final_weights(out, 3)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "model.generation_head.vision_head.weight" in changed
    assert all(torch.equal(before[k], after[k]) for k in before if ".vqmodel." in k)

    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step_000002", "step_000003"]  # keep_last 2, no staging left over
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step_000002.png", "step_000002.txt"]  # fmt: skip
    events = list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    accumulator = EventAccumulator(str(events[0].parent), size_guidance={"images": 0})
    accumulator.Reload()
    assert [e.step for e in accumulator.Images("credit/probe")] == [0, 2]
    assert sorted(p.name for p in (out / "heatmaps").iterdir()) == [
        "step_000000.png", "step_000002.png"]  # fmt: skip
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["optim"]["steps"] == 3 and saved["logging"]["output_dir"] == str(out)


@pytest.mark.parametrize(
    ("preset", "extra"),
    [
        (
            "grpo",
            ["--rollout.top_k", "20", "--rollout.top_p", "0.9", "--rollout.temperature", "0.9"],
        ),
        ("dapo", []),
        ("gcpo", []),
        ("gcpo", ["--algo.negative", "swap", "--policy.gradient_checkpointing", "true"]),
        ("gcpo", ["--algo.negative", "caption", "--rollout.cfg_negative", "null"]),
    ],
)
def test_each_preset_trains(assets, tmp_path, preset, extra):
    out = tmp_path / "run"
    assert main([*train_args(assets, out, 2), "--algo", preset, *extra]) == 0
    records = read_metrics(out)
    assert_finite_numbers(records)
    assert all(r["update/skipped"] == 0 for r in records)
    assert ("policy/kl_mean" in records[0]) == (preset != "dapo")  # DAPO has no reference
    credited = records[0]["policy/credit_max"] > records[0]["policy/credit_min"]
    assert credited == (preset == "gcpo")
    before = load_file(assets["policy"] / "model.safetensors")
    after = final_weights(out, 2)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert yaml.safe_load((out / "config.yaml").read_text())["algo"]["preset"] == preset


@pytest.mark.parametrize(
    "extra", [["--algo", "gcpo"], ["--algo", "grpo", "--algo.negative", "caption"]]
)
def test_guided_logprobs_train_on_the_sampling_distribution(assets, tmp_path, extra):
    out = tmp_path / "run"
    guided = ["--rollout.logprobs", "guided", "--rollout.temperature", "0.8"]
    assert main([*train_args(assets, out, 2), *extra, *guided]) == 0
    records = read_metrics(out)
    assert_finite_numbers(records)
    for record in records:
        # old_logp and the update score the same (guided) distribution: the ratio starts at 1,
        # and the KL to the unchanged reference starts at 0
        assert record["update/first_logratio_abs_max"] < LOGPROB_BOUND
        assert record["policy/ratio_max"] == pytest.approx(1.0, abs=LOGPROB_BOUND)
        assert record["grad_norm"] > 0
    assert records[0]["policy/kl_mean"] < LOGPROB_BOUND < records[1]["policy/kl_mean"]
    before = load_file(assets["policy"] / "model.safetensors")
    after = final_weights(out, 2)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert yaml.safe_load((out / "config.yaml").read_text())["rollout"]["logprobs"] == "guided"


def test_killed_run_resumes_to_the_same_parameters(assets, tmp_path, monkeypatch, capsys):
    args = ["--algo.preset", "gcpo", "--checkpoint.every", "0"]
    straight = tmp_path / "straight"
    assert main([*train_args(assets, straight, 4, "redness_then_stop"), *args]) == 0

    killed = tmp_path / "killed"
    monkeypatch.setenv("STOP_AT_CALL", "2")  # SIGTERM while scoring step 2
    assert main([*train_args(assets, killed, 4, "redness_then_stop"), *args]) == 0
    assert "stopped by SIGTERM after step 2/4" in capsys.readouterr().out
    assert [p.name for p in (killed / "checkpoints").iterdir()] == ["step_000002"]
    assert [r["step"] for r in read_metrics(killed)] == [1, 2]

    monkeypatch.delenv("STOP_AT_CALL")
    resume = ["train", "--logging.output_dir", str(killed), "--resume"]  # the rest: config.yaml
    assert main(resume) == 0
    assert "resumed from" in capsys.readouterr().out

    expected, got = final_weights(straight, 4), final_weights(killed, 4)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    drop_times = lambda rs: [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]  # noqa: E731
    assert drop_times(read_metrics(killed)) == drop_times(read_metrics(straight))


def test_dapo_refills_uninformative_groups_up_to_its_cap(assets, tmp_path):
    out = tmp_path / "refilled"
    assert main([*train_args(assets, out, 1, "flat_then_varied"), "--algo", "dapo"]) == 0
    (record,) = read_metrics(out)
    assert record["refill/rounds"] == 1 and record["samples/drawn"] == 16  # 8, then 8 more
    assert record["samples/kept"] == 8 and record["update/skipped"] == 0  # a full batch
    capped = tmp_path / "capped"
    extra = ["--algo", "dapo", "--algo.refill_rounds", "2"]
    assert main([*train_args(assets, capped, 1, "constant"), *extra]) == 0
    (record,) = read_metrics(capped)
    assert record["refill/rounds"] == 2 and record["samples/drawn"] == 24  # the cap stops it
    plain = tmp_path / "plain"
    assert main([*train_args(assets, plain, 1, "constant"), "--algo", "grpo"]) == 0
    assert read_metrics(plain)[0]["refill/rounds"] == 0


def test_all_groups_dropped_skips_the_update(assets, tmp_path):
    out = tmp_path / "run"
    assert main([*train_args(assets, out, 1, "constant"), "--algo", "dapo"]) == 0
    (record,) = read_metrics(out)
    assert record["update/skipped"] == 1 and record["samples/kept"] == 0
    assert record["refill/rounds"] == 3 and record["samples/drawn"] == 32  # DAPO's 3 rounds
    assert "loss" not in record
    before, after = load_file(assets["policy"] / "model.safetensors"), final_weights(out, 1)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_nonfinite_reward_drops_its_group_or_stops(assets, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*train_args(assets, out, 1, "first_nan"), "--rewards.on_nonfinite", "drop"]) == 0
    (record,) = read_metrics(out)
    assert record["samples/nonfinite_reward"] == 1 and record["samples/kept"] == 4
    assert main(train_args(assets, tmp_path / "strict", 1, "first_nan")) == 2
    err = capsys.readouterr().err
    assert "training stopped at step 1: reward" in err and "non-finite values at samples" in err
    assert "no checkpoint was written" in err and "Traceback" not in err


@pytest.mark.parametrize("how", ["raise", "nan"])
def test_a_reward_failing_at_step_3_stops_with_a_message_and_resume_finishes(
    assets, tmp_path, monkeypatch, capsys, how
):
    out, rewards = tmp_path / "run", assets["rewards"]
    monkeypatch.setenv("FAIL_HOW", how)
    args = [*train_args(assets, out, 5, "fails_at_call_3"), "--checkpoint.every", "10"]
    straight = [*train_args(assets, tmp_path / "straight", 5), "--checkpoint.every", "10"]
    assert main(straight) == 0
    capsys.readouterr()

    assert main(args) == 2  # the third reward call is step 3's
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"'{rewards}:fails_at_call_3'" in err
    assert "training stopped at step 3" in err
    assert "raised RuntimeError: the scoring service is down" in err or how == "nan"
    assert "non-finite values" in err or how == "raise"
    assert "step_000002" in err and "--resume" in err
    # the checkpoint of step 2 was written when the run stopped (checkpoint.every is 10)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_000002"]
    assert [r["step"] for r in read_metrics(out)] == [1, 2]

    fixed = ["train", "--logging.output_dir", str(out), "--resume",
             "--rewards.models", f"[{rewards}:redness]"]  # fmt: skip
    assert main(fixed) == 0
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3, 4, 5]
    # nothing was lost: the same parameters as a run that never failed
    resumed, reference = final_weights(out, 5), final_weights(tmp_path / "straight", 5)
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_negatives_are_logged_and_a_resume_from_an_earlier_checkpoint_logs_them_once(
    assets, tmp_path
):
    out = tmp_path / "run"
    args = [*train_args(assets, out, 3), "--algo.negative", "attribute", "--checkpoint.every", "2"]
    assert main(args) == 0

    def negatives():
        lines = (out / "negatives.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    logged = negatives()
    assert [r["step"] for r in logged] == [1, 2, 3]
    for record in logged:
        assert len(record["pairs"]) == 2  # both prompts of the step (2 per step here)
        assert all(len(pair) == 2 and pair[1] != pair[0] for pair in record["pairs"])
    # as if the run had been killed (SIGKILL) after step 3 but before its checkpoint
    shutil.rmtree(out / "checkpoints" / "step_000003")
    assert main(["train", "--logging.output_dir", str(out), "--resume"]) == 0
    assert negatives() == logged  # step 3 again, drawn the same, logged once
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3]


def test_minibatches_with_accumulation_match_one_full_batch(assets, tmp_path):
    split = ["--optim.minibatch_size", "2", "--optim.grad_accumulation", "4"]
    runs = {"full": [], "split": split, "two_passes": [*split, "--optim.updates_per_rollout", "2"]}
    metrics = {}
    for name, extra in runs.items():
        assert main([*train_args(assets, tmp_path / name, 1), "--algo", "grpo", *extra]) == 0
        (metrics[name],) = read_metrics(tmp_path / name)
    full, split = metrics["full"], metrics["split"]
    # 4 accumulated minibatches of 2 give the gradient of the 8 samples at once (its norm is
    # measured before clipping), and the same per-sequence mean loss.
    assert full["grad_norm"] > 0
    assert split["grad_norm"] == pytest.approx(full["grad_norm"], rel=1e-4)
    # the loss is a mean of +-A terms that nearly cancel (|A| <= 2): 64 eps of them
    assert split["loss"] == pytest.approx(full["loss"], abs=64 * 2 * FLOAT32_EPS)
    assert full["policy/ratio_max"] == pytest.approx(1.0, abs=LOGPROB_BOUND)
    # A second pass over the rollout sees the updated policy: its ratios leave 1.
    assert metrics["two_passes"]["policy/ratio_max"] > 1.0 + 1e-3


# ---------------------------------------------------------------------------------------------
# Options and bad input
# ---------------------------------------------------------------------------------------------


def test_print_config_shows_the_resolved_config_and_loads_nothing(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("optim: {steps: 7}\nrollout: {group_size: 4}\n")
    assert main(["train", "--config", str(config), "--algo", "dapo", "--rollout.group_size",
                 "6", "--algo.clip_high=0.3", "--print-config",
                 "--logging.output_dir", str(tmp_path / "run")]) == 0  # fmt: skip
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["steps"] == 7  # from the file
    assert printed["rollout"]["group_size"] == 6  # the command line wins over the file
    assert printed["algo"]["preset"] == "dapo" and printed["algo"]["clip_high"] == 0.3
    share = {"name": "shapes-oracle", "weight": 1.0, "kwargs": {"mode": "share"}}
    assert printed["rewards"]["models"] == [share]  # the default, filled in
    assert not (tmp_path / "run").exists()


def run_error(argv: list[str], capsys) -> str:
    """main(argv) must reject the input with exit status 2; returns its stderr."""
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_options_are_rejected_with_the_valid_keys(capsys):
    err = run_error(["train", "--algo.clip_hi", "0.3"], capsys)
    assert "unknown key 'clip_hi' in section 'algo'" in err and "clip_high" in err
    err = run_error(["train", "--foo", "1"], capsys)
    assert "unknown key 'foo'" in err and "rollout" in err
    err = run_error(["train", "--optim.lr", "fast"], capsys)
    assert "optim.lr='fast'" in err
    err = run_error(["train", "--rollout.logprobs", "cfg"], capsys)
    assert "rollout.logprobs='cfg'" in err and "guided" in err
    err = run_error(["train", "--algo", "ppo"], capsys)
    assert "algo.preset='ppo'" in err and "gcpo" in err
    err = run_error(["train", "--config", "/nonexistent/c.yaml"], capsys)
    assert "/nonexistent/c.yaml does not exist" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--prompt", "a cat", "--out", "x", "--bogus"])
    assert exit_info.value.code == 2


def test_bad_inputs_are_caught_before_training(assets, tmp_path, capsys):
    out = tmp_path / "run"
    err = run_error([*train_args(assets, out), "--prompts.train", str(tmp_path / "no.jsonl")],
                    capsys)  # fmt: skip
    assert f"prompt file {tmp_path / 'no.jsonl'} does not exist" in err

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert "holds no prompts" in run_error([*train_args(assets, out), "--prompts.train",
                                            str(empty)], capsys)  # fmt: skip

    err = run_error([*train_args(assets, out), "--rewards.models", "[no_such_reward]"], capsys)
    assert "reward 'no_such_reward' was not found. Tried:" in err

    partial = tmp_path / "partial.jsonl"
    partial.write_text('{"prompt": "a red circle", "negative_prompt": "a blue circle"}\n'
                       '{"prompt": "a green square"}\n')  # fmt: skip
    err = run_error([*train_args(assets, out), "--prompts.train", str(partial),
                     "--algo.negative", "caption"], capsys)  # fmt: skip
    assert str(partial) in err and "'a green square'" in err and "negative_prompt" in err
    captioned = tmp_path / "captioned.jsonl"
    captioned.write_text('{"prompt": "a red circle", "negative_prompt": "a blue circle"}\n')
    err = run_error([*train_args(assets, out), "--prompts.train", str(captioned),
                     "--algo.negative", "caption", "--logging.heatmap_every", "5",
                     "--logging.probe_prompt", "a lone cat"], capsys)  # fmt: skip
    assert "logging.probe_prompt='a lone cat'" in err and "no negative_prompt" in err
    err = run_error([*train_args(assets, out), "--prompts.train", str(captioned),
                     "--algo.negative", "swap", "--logging.heatmap_every", "5",
                     "--logging.probe_prompt", "hello"], capsys)  # fmt: skip
    assert "cannot derive a negative caption from prompt 'hello'" in err

    err = run_error([*train_args(assets, out), "--policy.name", str(tmp_path / "missing")], capsys)
    assert f"no such folder: {tmp_path / 'missing'}" in err

    err = run_error([*train_args(assets, out), "--optim.minibatch_size", "3"], capsys)
    assert "optim.minibatch_size=3 must divide" in err

    if importlib.util.find_spec("wandb") is None:
        err = run_error([*train_args(assets, out), "--logging.trackers", "wandb"], capsys)
        assert "logging.trackers='wandb' needs the wandb package" in err
    assert not out.exists()  # nothing started


def test_resume_and_overwrite_are_checked(assets, tmp_path, capsys):
    out = tmp_path / "run"
    err = run_error([*train_args(assets, out), "--resume"], capsys)
    assert "holds no complete checkpoint" in err
    assert "--resume needs logging.output_dir" in run_error(["train", "--resume"], capsys)
    assert main(train_args(assets, out, 1)) == 0
    err = run_error(train_args(assets, out, 1), capsys)
    assert "already holds a run; pass --resume" in err


def test_missing_shapes_clip_says_how_to_build_it(assets, tmp_path, capsys, monkeypatch):
    import t2i_gcpo.toy.assets as shapes_assets

    monkeypatch.setattr(shapes_assets, "ASSETS_DIR", tmp_path / "no-assets")  # as if unbuilt
    args = train_args(assets, tmp_path / "run")
    args[args.index("--rewards.models") + 1] = "[shapes-clip]"  # a shipped asset, missing here
    assert "t2i-gcpo toy build" in run_error(args, capsys)


# ---------------------------------------------------------------------------------------------
# sample and eval
# ---------------------------------------------------------------------------------------------


def test_sample_writes_pngs(assets, tmp_path, capsys):
    out = tmp_path / "images"
    assert main(["sample", "--policy", str(assets["policy"]), "--prompt", "a red circle",
                 "--prompt", "a blue square", "--samples", "2", "--out", str(out),
                 "--device", "cpu"]) == 0  # fmt: skip
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["p000_s00.png", "p000_s01.png", "p001_s00.png", "p001_s01.png"]
    assert json.loads((out / "prompts.json").read_text()) == ["a red circle", "a blue square"]
    assert "wrote 4 images" in capsys.readouterr().out
    err = run_error(["sample", "--policy", str(tmp_path / "none"), "--prompt", "a cat",
                     "--out", str(out)], capsys)  # fmt: skip
    assert "no such folder" in err


def test_eval_reports_rewards_and_oracle_accuracy(assets, tmp_path, capsys):
    report = tmp_path / "eval.json"
    assert main(["eval", "--policy", str(assets["policy"]), "--prompts", "shapes:eval",
                 "--samples-per-prompt", "1", "--device", "cpu", "--rewards",
                 f"{assets['rewards']}:redness", "--judge", f"{assets['rewards']}:RedJudge",
                 "--output-json", str(report)]) == 0  # fmt: skip
    results = json.loads(report.read_text())
    assert results == json.loads(capsys.readouterr().out)
    accuracy = results["judge_accuracy"]
    assert set(accuracy) == {"all", "geneval", "single_object", "two_object", "counting",
                             "colors", "position", "color_attr"}  # fmt: skip
    assert all(0.0 <= v <= 1.0 for v in accuracy.values())
    # shapes:eval has negative captions and GenEval metadata: every negative is measured
    assert set(results["credit"]) == {"null", "caption", "attribute", "position"}
    for figures in results["credit"].values():
        assert 0.0 <= figures["object_auroc"] <= 1.0 and figures["localization"] > 0
    assert set(results["rewards"]) == {"mean", "redness"}

    plain = tmp_path / "plain.txt"
    plain.write_text("a red circle\n")
    err = run_error(["eval", "--policy", str(assets["policy"]), "--prompts", str(plain)], capsys)
    assert "give --rewards, --judge or both" in err
    err = run_error(["eval", "--policy", str(assets["policy"]), "--prompts", str(plain),
                     "--judge", f"{assets['rewards']}:redness"], capsys)  # fmt: skip
    assert "is a reward without a judge() method" in err
    err = run_error(["eval", "--policy", str(assets["policy"]), "--prompts", str(plain),
                     "--judge", "shapes-oracle"], capsys)  # fmt: skip
    assert "cannot judge these prompts" in err and "shapes-world metadata" in err
