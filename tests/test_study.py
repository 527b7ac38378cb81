"""benchmarks/study.py end to end on a budget far below --quick's: two configurations, two
steps, six eval prompts (one per category); then a rerun that finds every run done."""

import json

import pytest
from benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def study():
    with benchmark_script("study") as module:
        yield module


def test_study_runs_summarises_plots_and_resumes(study, tmp_path, capsys):
    args = ["--quick", "--configs", "gcpo/clip", "grpo/clip", "grpo-flat/oracle", "--steps", "2",
            "--eval-every", "2", "--eval-prompts", "6", "--eval-samples", "1", "--flat-steps", "1",
            "--jobs", "1", "--out", str(tmp_path), "--keep-checkpoints"]  # fmt: skip
    assert study.main(args) == 0
    out = capsys.readouterr().out
    assert "gcpo/clip seed 0:" in out and "grpo/clip seed 0:" in out
    assert "| gcpo/clip | 1 |" in out and "| grpo/clip | 1 |" in out
    assert out.count("| gcpo/clip - grpo/clip |") == 2  # the score, then per category
    assert "| comparison | single_object | two_object | counting |" in out
    # the background ablation trains the flat-ground policy the study built once
    assert "built the flat-ground policy (1 steps" in out
    flat_config = (tmp_path / "grpo-flat__oracle" / "seed0" / "config.yaml").read_text()
    assert str(tmp_path / "policy-flat") in flat_config and "shapes-oracle" in flat_config
    summary = json.loads((tmp_path / "study_summary.json").read_text())
    run = summary["runs"]["gcpo/clip"]["0"]
    assert run["eval_steps"] == [0, 2] and len(run["reward"]) == 2
    assert run["samples_drawn"] == 2 * 4 * 8  # 2 steps of 4 prompts x 8 samples
    assert run["drawn_at_eval"] == [0, 64]  # by the evaluations at steps 0 and 2
    assert 0.0 <= run["final/eval/oracle/geneval"] <= 1.0
    assert 0.0 <= run["final/eval/credit/null/object_auroc"] <= 1.0
    assert (tmp_path / "study_algorithms.png").stat().st_size > 0
    assert (tmp_path / "study_gcpo_knobs.png").stat().st_size > 0
    assert (tmp_path / "study_credit.png").stat().st_size > 0
    folder = tmp_path / "gcpo__clip" / "seed0"
    assert (folder / "done.json").is_file() and (folder / "checkpoints").is_dir()

    assert study.main(args) == 0  # everything is done: nothing trains again
    assert capsys.readouterr().out.count("done before, skipped") == 3

    # a longer budget continues the finished run from its checkpoint, then drops checkpoints
    longer = [a for a in args if a != "--keep-checkpoints"]
    longer[longer.index("--steps") + 1] = "3"
    longer[longer.index("--configs") + 2] = "gcpo/clip"
    assert study.main(longer) == 0
    assert "gcpo/clip seed 0:" in capsys.readouterr().out
    assert [r["step"] for r in study.read_metrics(folder)] == [0, 1, 2, 3]
    assert "resumed from" in (tmp_path / "gcpo__clip" / "seed0.log").read_text()
    assert not (folder / "checkpoints").exists()


def test_final_differences_pairs_seeds_both_finished(study):
    summary = {
        "a": {0: {"final/eval/oracle/geneval": 0.50, "reward_last": 0.4}, 1: {"reward_last": 1}},
        "b": {0: {"final/eval/oracle/geneval": 0.25, "reward_last": 0.1}, 2: {"reward_last": 0}},
    }
    assert study.final_differences(summary, "a", "b") == {0: pytest.approx(25.0)}
    assert study.final_differences(summary, "a", "b", "reward_last", scale=1.0) == {
        0: pytest.approx(0.3)
    }
    assert study.final_differences(summary, "a", "missing") == {}
