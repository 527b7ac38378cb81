"""benchmarks/default_run.py's table, on hand-made eval records."""

import pytest
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
