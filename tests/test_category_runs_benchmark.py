"""benchmarks/category_runs.py: the prompts of one category's run and the figures it reads back
from a run folder."""

import json

import pytest
from benchmark_scripts import benchmark_script

from t2i_gcpo.data.prompts import load_prompts


@pytest.fixture(scope="module")
def category_runs():
    with benchmark_script("category_runs") as module:
        yield module


@pytest.mark.parametrize("tag", ["single_object", "counting", "color_attr"])
def test_a_category_trains_on_distinct_prompts_of_its_own_and_evaluates_on_unseen_ones(
    category_runs, tag, tmp_path
):
    train, held_out = category_runs.category_prompts(tag, 8)
    prompts = [r.prompt for r in train]
    assert len(prompts) == len(set(prompts)) and 2 <= len(prompts) <= 8
    assert {r.metadata["tag"] for r in train} == {r.metadata["tag"] for r in held_out} == {tag}
    assert len(held_out) == 16  # every held-out prompt of the category, repeats included
    assert not set(prompts) & {r.prompt for r in held_out}
    category_runs.write_records(tmp_path / "train.jsonl", train)
    assert load_prompts(tmp_path / "train.jsonl") == train


def test_summary_reads_the_reward_fifths_and_the_first_and_last_evaluation(category_runs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = [{"step": 0, "eval/oracle/all": 0.25}]
    records += [{"step": s, "reward/mean": 0.5 if s <= 2 else 1.0} for s in range(1, 11)]
    records += [{"step": 10, "eval/oracle/all": 0.375}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "config.yaml").write_text("logging:\n  eval_samples_per_prompt: 4\n")
    (tmp_path / "eval.jsonl").write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "c"}\n')
    (tmp_path / "wall_seconds.txt").write_text("12.5\n")
    s = category_runs.summary(tmp_path)
    # a fifth of 10 steps: steps 1-2 and 9-10
    assert (s["steps"], s["first"], s["last"]) == (10, 0.5, 1.0)
    assert (s["before"], s["after"], s["images"], s["seconds"]) == (0.25, 0.375, 12, 12.5)
