"""TrainConfig: defaults, field checks, YAML files, command-line overrides and their layers."""

import dataclasses

import pytest
import yaml

from t2i_gcpo.algos import AlgorithmPreset, get_preset
from t2i_gcpo.config import (
    SECTIONS,
    AlgoConfig,
    ConfigError,
    TrainConfig,
    build_config,
    check_layout,
    layered_config,
    load_config_file,
    merge,
    parse_overrides,
)


def test_defaults_describe_the_shapes_world_gcpo_run():
    config = TrainConfig()
    assert config.policy.name == "shapes"
    assert (config.prompts.train, config.prompts.eval) == ("shapes:train", "shapes:eval")
    # the oracle's partial credit, judged by its strict verdict
    share = {"name": "shapes-oracle", "weight": 1.0, "kwargs": {"mode": "share"}}
    assert config.rewards.models == [share]
    assert config.logging.eval_judge == "shapes-oracle"
    assert config.preset == get_preset("gcpo")
    assert config.rollout.cfg_scale is None  # the policy's own default
    assert (config.rollout.group_size, config.rollout.prompts_per_step) == (8, 4)
    assert (config.optim.steps, config.optim.lr, config.optim.updates_per_rollout) == (50, 1e-4, 4)


def test_yaml_round_trip_keeps_every_value():
    config = build_config(
        {"algo": {"preset": "dapo", "clip_high": 0.3}, "rollout": {"top_k": 5}, "seed": 7}
    )
    again = build_config(yaml.safe_load(config.to_yaml()))
    assert again == config
    assert list(yaml.safe_load(config.to_yaml())) == [*SECTIONS, "seed"]


def test_algo_section_mirrors_every_preset_field():
    preset_fields = {f.name for f in dataclasses.fields(AlgorithmPreset)} - {"name"}
    config_fields = {f.name for f in dataclasses.fields(AlgoConfig)} - {"preset"}
    assert config_fields == preset_fields
    for f in dataclasses.fields(AlgoConfig):
        if f.name != "preset":
            assert f.default is None, f.name  # null = the preset's value


def test_algo_overrides_are_applied_and_validated_by_the_preset():
    config = build_config({"algo": {"preset": "dapo", "clip_high": 0.3, "beta": 0.01}})
    assert config.preset == get_preset("dapo").replace(clip_high=0.3, beta=0.01)
    assert config.preset.dynamic_sampling  # untouched fields keep the preset's value
    with pytest.raises(ConfigError, match=r"normalization='hist' is not supported.*'rank'"):
        build_config({"algo": {"normalization": "hist"}})
    with pytest.raises(ConfigError, match="normalization='linear' needs a non-negative"):
        build_config({"algo": {"normalization": "linear", "divergence": "logratio"}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"policy": {"dtype": "float16"}}, "policy.dtype='float16' is not supported"),
        ({"policy": {"device": "cuda:1"}}, "policy.device='cuda:1' is not supported"),
        ({"policy": {"cpu_threads": 0}}, "policy.cpu_threads=0 must be >= 1"),
        ({"prompts": {"train": " "}}, "prompts.train=' ' must be a non-empty string"),
        ({"rollout": {"group_size": 1}}, "rollout.group_size=1 must be >= 2"),
        ({"rollout": {"top_p": 1.5}}, r"rollout.top_p=1.5 must lie in \(0, 1\]"),
        ({"rollout": {"temperature": 0}}, "rollout.temperature=0.0 must be > 0"),
        ({"rollout": {"cfg_negative": "caption"}}, "rollout.cfg_negative='caption'"),
        ({"algo": {"preset": "ppo"}}, r"algo.preset='ppo' is not supported; expected one of"),
        ({"rewards": {"models": []}}, "rewards.models=.* must list at least one reward"),
        ({"rewards": {"models": [{"nme": "clip"}]}}, r"rewards.models\[0\]: .*needs 'name'"),
        ({"rewards": {"on_nonfinite": "skip"}}, "rewards.on_nonfinite='skip'"),
        ({"optim": {"lr": 0}}, "optim.lr=0.0 must be > 0"),
        ({"optim": {"schedule": "linear"}}, "optim.schedule='linear' is not supported"),
        ({"optim": {"min_lr_ratio": 2}}, r"optim.min_lr_ratio=2.0 must lie in \[0, 1\]"),
        ({"optim": {"minibatch_size": 0}}, "optim.minibatch_size=0 must be >= 1"),
        ({"optim": {"steps": 2.5}}, "optim.steps=2.5 has the wrong type; expected int"),
        ({"optim": {"steps": True}}, "optim.steps=True has the wrong type"),
        ({"reference": {"dtype": "int8"}}, "reference.dtype='int8' is not supported"),
        ({"logging": {"trackers": "mlflow"}}, "logging.trackers='mlflow' is not supported"),
        ({"logging": {"eval_every": -1}}, "logging.eval_every=-1 must be >= 0"),
        ({"checkpoint": {"keep_last": 0}}, "checkpoint.keep_last=0 must be >= 1"),
        ({"seed": -3}, "seed=-3 must be >= 0"),
        ({"optim": "fast"}, "section 'optim' must be a mapping"),
    ],
)
def test_bad_values_name_the_field_the_value_and_what_is_allowed(raw, message):
    with pytest.raises(ConfigError, match=message):
        build_config(raw)


def test_unknown_keys_list_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        build_config({"optim": {"learning_rate": 1e-4}})
    assert "unknown key 'learning_rate' in section 'optim'" in str(error.value)
    assert "lr, schedule, min_lr_ratio" in str(error.value)
    with pytest.raises(ConfigError, match="unknown key 'polcy' in the config.*'policy'"):
        build_config({"polcy": {}})


def test_overrides_are_read_as_yaml():
    overrides = parse_overrides(
        ["--algo.clip_high", "0.28", "--algo.kl_relax", "false", "--prompts.eval", "null",
         "--rewards.models=[shapes-oracle, {name: shapes-clip, weight: 0.5}]", "--seed", "3",
         "--optim.lr", "1e-4", "--policy.name", "org/model"]
    )  # fmt: skip
    assert overrides == {
        "algo": {"clip_high": 0.28, "kl_relax": False},
        "prompts": {"eval": None},
        "rewards": {"models": ["shapes-oracle", {"name": "shapes-clip", "weight": 0.5}]},
        "seed": 3,
        "optim": {"lr": "1e-4"},  # YAML 1.1 leaves 1e-4 a string; the float field reads it
        "policy": {"name": "org/model"},
    }
    config = build_config(overrides)
    assert config.optim.lr == 1e-4 and config.prompts.eval is None
    assert config.rewards.models[0] == {"name": "shapes-oracle", "weight": 1.0, "kwargs": {}}
    # A text field that cannot be null reads YAML's null as the word.
    assert (
        build_config(parse_overrides(["--rollout.cfg_negative", "null"])).rollout.cfg_negative
        == "null"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optim.lr"], "option --optim.lr needs a value"),
        (["--optim.lr", "--seed", "1"], "option --optim.lr needs a value"),
        (["steps", "3"], "unexpected argument 'steps'"),
        (["--optim", "3"], "expected --optim.FIELD with FIELD one of lr, schedule"),
        (["--optim.lr.peak", "3"], "expected --optim.FIELD"),
        (["--sed", "3"], r"unknown key 'sed' in the config \(did you mean 'seed'\?\)"),
    ],
)
def test_malformed_overrides_are_errors(args, message):
    with pytest.raises(ConfigError, match=message):
        parse_overrides(args)


def test_negative_numbers_are_values_not_options():
    with pytest.raises(ConfigError, match="rollout.top_k=-1 must be >= 1"):
        build_config(parse_overrides(["--rollout.top_k", "-1"]))


def test_merge_lays_sections_field_by_field():
    base = {"optim": {"lr": 1.0, "steps": 3}, "seed": 1, "rewards": {"models": ["a", "b"]}}
    update = {"optim": {"steps": 5}, "rewards": {"models": ["c"]}}
    assert merge(base, update) == {
        "optim": {"lr": 1.0, "steps": 5},
        "seed": 1,
        "rewards": {"models": ["c"]},
    }
    assert base["optim"] == {"lr": 1.0, "steps": 3}  # inputs are not modified


def test_layers_defaults_file_overrides_and_the_resumed_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        build_config({"optim": {"steps": 9, "lr": 0.5}, "seed": 4}).to_yaml()
    )
    file = tmp_path / "c.yaml"
    file.write_text(f"optim: {{steps: 7}}\nlogging: {{output_dir: {run}}}\n")

    fresh = layered_config(file, ["--optim.lr", "0.25"])
    assert (fresh.optim.steps, fresh.optim.lr, fresh.seed) == (7, 0.25, 0)
    resumed = layered_config(file, ["--optim.lr", "0.25"], resume=True)
    assert (resumed.optim.steps, resumed.optim.lr, resumed.seed) == (7, 0.25, 4)
    with pytest.raises(ConfigError, match="--resume needs logging.output_dir"):
        layered_config(None, [], resume=True)


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="config file .*missing.yaml does not exist"):
        load_config_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config_file(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml must hold a mapping"):
        load_config_file(listing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert build_config(load_config_file(empty)) == TrainConfig()


def test_layout_must_split_into_processes_and_minibatches():
    config = build_config(
        {"rollout": {"prompts_per_step": 4, "group_size": 4}, "optim": {"minibatch_size": 4}}
    )
    check_layout(config, 1)  # 16 samples, 4 minibatches
    check_layout(config, 2)  # 8 samples per process
    with pytest.raises(ConfigError, match="prompts_per_step=4 must be a multiple of .* \\(3\\)"):
        check_layout(config, 3)
    odd = build_config({"rollout": {"group_size": 3, "prompts_per_step": 1}})
    with pytest.raises(ConfigError, match="optim.minibatch_size=2 must divide"):
        check_layout(
            dataclasses.replace(odd, optim=dataclasses.replace(odd.optim, minibatch_size=2)), 1
        )
    accumulate = build_config(
        {"rollout": {"group_size": 4, "prompts_per_step": 2}, "optim": {"grad_accumulation": 3}}
    )
    with pytest.raises(ConfigError, match="optim.grad_accumulation=3 must divide the 1 minibatch"):
        check_layout(accumulate, 1)


def test_docs_describe_every_field():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    missing = [
        f"{section}.{f.name}"
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
        if f"`{f.name}`" not in docs and f"`{section}.{f.name}`" not in docs
    ]
    assert missing == []


def test_the_shipped_recipes_are_valid_configs():
    from pathlib import Path

    from t2i_gcpo.config import layered_config

    recipes = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert len(recipes) >= 3
    for recipe in recipes:
        config = layered_config(recipe, [])
        assert config.policy.name.startswith("deepseek-community/Janus-Pro-")
        assert config.rollout.cfg_scale == 5.0 and config.rollout.group_size == 16
        assert config.policy.gradient_checkpointing
