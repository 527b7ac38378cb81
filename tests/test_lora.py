"""LoRA training (peft) and bf16 mixed precision, through `t2i-gcpo train` on a tiny policy."""

import json

import pytest
import torch
from safetensors.torch import load_file
from training_runs import train_args, write_run_assets

from t2i_gcpo.cli import main
from t2i_gcpo.policies import load_policy
from t2i_gcpo.policies.lora import AdaptersOff
from t2i_gcpo.toy.models import tiny_janus_policy

PROMPTS = ["a red cat", "a blue dog"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return write_run_assets(tmp_path_factory.mktemp("lora"))


def train(assets, out, steps=3, reward="redness", *extra):
    return main(train_args(assets, out, steps, reward, *extra, lr="1e-2"))


LORA = ["--policy.lora", "{r: 4, alpha: 8}", "--algo", "grpo"]  # GRPO: beta 0.03, a KL term


def test_lora_trains_only_the_adapters_against_the_base_as_reference(assets, tmp_path):
    out = tmp_path / "run"
    assert train(assets, out, 3, "redness", *LORA) == 0
    folder = out / "checkpoints" / "step_000003" / "policy"
    files = sorted(p.name for p in folder.iterdir())
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    assert json.loads((folder / "lora_base.json").read_text())["base"] == str(assets["policy"])
    saved = load_file(folder / "adapter_model.safetensors")
    assert saved and all("lora_" in k and "language_model.layers" in k for k in saved)
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # B left zero

    adapted, base = load_policy(str(folder)), load_policy(str(assets["policy"]))
    base_weights = dict(base.model.named_parameters())
    for name, parameter in adapted.model.named_parameters():  # every base weight untouched
        if "lora_" not in name:
            plain = name.replace(".base_layer", "")
            assert torch.equal(parameter, base_weights[plain]), name
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = AdaptersOff(adapted).token_logprobs(PROMPTS, tokens)
        assert torch.equal(reference, base.token_logprobs(PROMPTS, tokens))
        assert not torch.allclose(adapted.token_logprobs(PROMPTS, tokens), reference)
        guided = AdaptersOff(adapted).guided_logprobs(PROMPTS, tokens, "null", 3.0, 0.9)
        assert torch.equal(guided, base.guided_logprobs(PROMPTS, tokens, "null", 3.0, 0.9))
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["policy/kl_mean"] > 0  # the adapters moved away from the reference


def test_a_killed_lora_run_resumes_to_the_same_adapters(assets, tmp_path, monkeypatch):
    args = [*LORA, "--checkpoint.every", "0"]
    assert train(assets, tmp_path / "straight", 4, "redness_then_stop", *args) == 0
    monkeypatch.setenv("STOP_AT_CALL", "2")
    assert train(assets, tmp_path / "killed", 4, "redness_then_stop", *args) == 0
    monkeypatch.delenv("STOP_AT_CALL")
    resume = ["train", "--logging.output_dir", str(tmp_path / "killed"), "--resume"]
    assert main(resume) == 0

    def adapters(run):
        folder = run / "checkpoints" / "step_000004" / "policy"
        return load_file(folder / "adapter_model.safetensors")

    straight, resumed = adapters(tmp_path / "straight"), adapters(tmp_path / "killed")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_export_merges_the_adapters_into_a_plain_folder(assets, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(assets, out, 2, "redness", *LORA) == 0
    checkpoint = out / "checkpoints" / "step_000002"
    assert main(["export", "--policy", str(checkpoint), "--out", str(tmp_path / "merged")]) == 0
    merged_folder = tmp_path / "merged"
    assert (merged_folder / "model.safetensors").is_file()
    assert not (merged_folder / "adapter_config.json").exists()
    adapted, merged = load_policy(str(checkpoint / "policy")), load_policy(str(merged_folder))
    assert merged.adapter is None
    greedy = {"samples_per_prompt": 2, "cfg_scale": 3.0, "top_k": 1}
    assert torch.equal(
        adapted.sample(PROMPTS, **greedy).tokens, merged.sample(PROMPTS, **greedy).tokens
    )


def test_bf16_full_fine_tuning_keeps_float32_master_weights(assets, tmp_path):
    out = tmp_path / "run"
    extra = ["--policy.dtype", "bfloat16", "--optim.lr", "1e-6", "--algo", "dapo"]
    assert train(assets, out, 1, "redness", *extra) == 0
    before = load_file(assets["policy"] / "model.safetensors")
    after = load_file(out / "checkpoints" / "step_000001" / "policy" / "model.safetensors")
    head = "model.generation_head.vision_head.weight"
    assert after[head].dtype == torch.float32
    changed = (after[head] != before[head]).float().mean().item()
    assert (
        changed > 0.9
    )  # a 1e-6 step reaches nearly every weight (bf16 weights would round it away)
    as_bf16 = (after[head].bfloat16() != before[head].bfloat16()).float().mean().item()
    assert as_bf16 < 0.2  # what bf16 weights would have kept of the same update


def test_bf16_recorded_logprobs_agree_with_teacher_forced_within_the_derived_bound():
    """Sampling (one token at a time) and teacher forcing (all at once) round the backbone's
    activations to bfloat16 differently: at most 2^-8 of each value, once per side, per layer,
    so the hidden state reaching the float32 head differs by at most 2 (L + 1) 2^-8 of its own
    size, L layers plus the head's first projection. A logit sum_i h_i w_i then moves by at most
    that share of A_v = sum_i |h_i w_i|, and a log-softmax at most doubles the largest move:
    |d log p| <= 4 (L + 1) 2^-8 max_v A_v. The bound is computed from the model's own h and w."""
    policy = tiny_janus_policy(grid=4, seed=1, init_std=0.1).eval()
    policy.compute_dtype = torch.bfloat16
    captured = {}
    head = policy.model.model.generation_head.vision_head
    hook = head.register_forward_hook(lambda m, args, out: captured.update(h=args[0].detach()))
    rollout = policy.sample(PROMPTS, samples_per_prompt=3, cfg_scale=3.0)
    with torch.no_grad():
        teacher = policy.token_logprobs(rollout.sample_prompts, rollout.tokens)
    hook.remove()
    hidden = captured["h"].float()  # (N, T, P): the teacher-forced pass's head inputs
    spread = (hidden.abs() @ head.weight.abs().T).amax(dim=-1)  # max_v A_v, (N, T)
    layers = policy.model.config.text_config.num_hidden_layers
    bound = 4 * (layers + 1) * 2**-8 * spread
    difference = (teacher - rollout.logp_pos).abs()
    assert (difference <= bound).all() and difference.max() > 0  # bf16 did round
    ratio = torch.exp(teacher - rollout.logp_pos)  # the first update's importance ratio
    assert ((ratio - 1).abs() <= torch.expm1(bound)).all()


def test_sample_eval_and_heatmap_take_a_lora_checkpoint(assets, tmp_path):
    out = tmp_path / "run"
    assert train(assets, out, 1, "redness", *LORA) == 0
    checkpoint = str(out / "checkpoints" / "step_000001")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    sampled = tmp_path / "samples"
    assert main(["sample", "--policy", checkpoint, "--prompt", PROMPTS[0], "--samples", "2",
                 "--out", str(sampled)]) == 0  # fmt: skip
    assert len(list(sampled.glob("*.png"))) == 2
    report = tmp_path / "eval.json"
    assert main(["eval", "--policy", checkpoint, "--prompts", str(prompts), "--samples-per-prompt",
                 "1", "--rewards", f"{assets['rewards']}:redness", "--output-json",
                 str(report)]) == 0  # fmt: skip
    figures = json.loads(report.read_text())
    assert set(figures["rewards"]) == {"mean", "redness"} and figures["policy"] == checkpoint
    maps = tmp_path / "maps"
    assert main(["heatmap", "--policy", checkpoint, "--prompt", PROMPTS[0], "--samples", "2",
                 "--reward", "none", "--out", str(maps)]) == 0  # fmt: skip
    assert (maps / "index.html").is_file()
