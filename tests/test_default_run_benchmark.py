"""benchmarks/default_run.py's table, on hand-made eval records."""

import pytest
import yaml
from benchmark_scripts import benchmark_script

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


@pytest.fixture(scope="module")
def default_run():
    with benchmark_script("default_run") as module:
        yield module


def record(geneval: float, extra: float | None) -> dict:
    out = {f"eval/oracle/{t}": geneval for t in TAGS} | {"eval/oracle/geneval": geneval}
    return out if extra is None else out | {"eval/objects/extra": extra}


def test_table_gives_each_seeds_gain_its_extras_and_the_mean(default_run):
    rows = [
        (0, 200.0, record(0.30, 0.5), record(0.40, 2.25)),
        (1, 210.0, record(0.30, None), record(0.28, None)),  # a run logged before extras
    ]
    text = default_run.table(rows)
    assert "| 0 | 200 | 30.0 -> 40.0 (+10.0) | 30->40 |" in text
    assert text.splitlines()[2].endswith("| 0.50->2.25 |")
    assert text.splitlines()[3].endswith("| nan->nan |")
    # gains +10 and -2: mean +4.0, sample std 8.5
    assert "mean gain +4.0 +- 8.5 points; every seed rising: False; longest run 210 s" in text


def test_error_line_gives_the_binomial_error_of_an_eval_a_gain_and_the_mean_gain(default_run):
    images = dict.fromkeys(TAGS, 24)
    # every category at 0.5 over 24 images: variance 6 * 0.25 / 24 = 1/16, sd 1/4, over the
    # 6 categories' mean 1/24 = 4.17 points; at 1.0 it is 0
    assert default_run.score_error(record(0.5, None), images) == pytest.approx(100 / 24)
    assert default_run.score_error(record(1.0, None), images) == 0.0
    rows = [(s, 1.0, record(0.5, None), record(1.0, None)) for s in (0, 1)]
    line = default_run.table(rows, images).splitlines()[-1]
    # evaluations 4.17, 0, 4.17, 0 -> mean 2.1; each gain 4.17; mean of two gains 4.17 / sqrt 2
    assert line == (
        "binomial standard error (images independent, so a floor): one evaluation's score "
        "+- 2.1 points, one seed's gain +- 4.2, the mean gain over 2 seeds +- 2.9"
    )


def test_images_per_category_reads_the_runs_eval_prompts_and_samples(default_run, tmp_path):
    config = {"prompts": {"eval": "shapes:eval"}, "logging": {"eval_samples_per_prompt": 3}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # the shipped eval split holds 16 prompts of each category
    assert default_run.images_per_category(tmp_path) == dict.fromkeys(TAGS, 48)
