"""The --dry-run memory estimate against numbers worked out by hand."""

import pytest

from t2i_gcpo.cli import main
from t2i_gcpo.memory import ModelShape, StepPlan, estimate, janus_shape
from t2i_gcpo.toy.models import janus_pro_config, tiny_janus_policy

# a 1e9-parameter model, 0.8e9 of them trainable, LoRA adding 1e7; 10 layers of width 1000
SHAPE = ModelShape(total=10**9, trainable=8 * 10**8, lora=10**7, layers=10, hidden=1000,
                   kv_width=1000, heads=10, intermediate=3000, image_tokens=100,
                   codebook=1000)  # fmt: skip


def test_full_float32_with_a_reference_copy():
    plan = StepPlan(samples=4, positions=200, minibatch=2, checkpointing=False, reference=True)
    got = estimate(SHAPE, plan)
    assert got.weights == pytest.approx(4.0)  # 1e9 x 4 B
    assert got.gradients == pytest.approx(3.2)  # 0.8e9 x 4 B
    assert got.optimizer == pytest.approx(6.4)  # 0.8e9 x 8 B
    assert got.reference == pytest.approx(4.0)  # a float32 copy
    # per layer: 2 x 200 tokens x (16 x 1000 + 2 x 3000) x 4 B + 2 x 10 heads x 200^2 x 4 B
    per_layer = 400 * 22000 * 4 + 20 * 40000 * 4
    logits = 2 * 2 * 100 * 1000 * 4
    assert got.activations == pytest.approx((10 * per_layer + logits) / 1e9)
    assert got.kv_cache == pytest.approx(2 * 10 * 8 * 200 * 1000 * 4 / 1e9)  # k,v x both CFG rows
    # peak: weights + optimizer + reference + max(KV 0.128, gradients + activations)
    assert got.peak == pytest.approx(4.0 + 6.4 + 4.0 + 3.2 + got.activations)


def test_lora_bfloat16_with_checkpointing_and_zero3_over_4_processes():
    plan = StepPlan(samples=64, positions=200, minibatch=1, dtype="bfloat16", lora=True,
                    checkpointing=True, reference=True, processes=4, zero_stage=3)  # fmt: skip
    got = estimate(SHAPE, plan)
    assert got.weights == pytest.approx((1e9 * 2 + 1e7 * 4) / 1e9 / 4)  # bf16 base, fp32 LoRA
    assert got.gradients == pytest.approx(1e7 * 4 / 1e9 / 4)
    assert got.optimizer == pytest.approx(1e7 * 8 / 1e9 / 4)
    assert got.reference == 0.0  # the adapters switched off: no copy
    kept = 10 * 200 * 1000 * 2  # one hidden state a layer
    working = 200 * 22000 * 2 + 10 * 200**2 * 2  # one layer recomputed
    assert got.activations == pytest.approx((kept + working + 2 * 100 * 1000 * 4) / 1e9)
    assert got.kv_cache == pytest.approx(2 * 10 * 128 * 200 * 1000 * 2 / 1e9)
    assert got.peak == pytest.approx(got.weights + got.optimizer + got.kv_cache)  # KV dominates


def test_parameters_are_counted_without_weights():
    policy = tiny_janus_policy(grid=4)
    shape = janus_shape(policy.model.config, {"r": 2, "target_modules": ["q_proj"]})
    assert shape.total == sum(p.numel() for p in policy.model.parameters())
    assert shape.trainable == sum(p.numel() for p in policy.trainable_parameters())
    assert shape.lora == 2 * 2 * (32 + 32)  # two layers' q_proj (32 -> 32), rank 2
    pro = janus_shape(janus_pro_config("1b"))
    assert (pro.image_tokens, pro.codebook, pro.layers, pro.hidden) == (576, 16384, 24, 2048)


def test_dry_run_prints_the_table_and_loads_no_weights(capsys, tmp_path):
    tiny_janus_policy(grid=4).save(tmp_path / "tiny")
    argv = ["train", "--dry-run", "--policy.name", str(tmp_path / "tiny"), "--processes", "2",
            "--zero-stage", "2", "--policy.lora", "{r: 4}"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "LoRA" in out and "2 process(es), ZeRO stage 2" in out and "peak" in out
    assert main([*argv[:-2], "--rollout.prompts_per_step", "3"]) == 2
