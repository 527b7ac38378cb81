"""Every python example in the README runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_python_example_runs(index):
    namespace: dict = {}
    exec(compile(EXAMPLES[index], f"README.md example {index}", "exec"), namespace)
    if "loss" in namespace:
        assert bool(namespace["loss"].isfinite())
