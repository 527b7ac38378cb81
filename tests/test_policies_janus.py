"""JanusPolicy on tiny random Janus models: sampling, log-probs, gradients, decoding, loading."""

import json

import pytest
import torch
from tolerances import SAME_MATHS

from t2i_gcpo.policies import NULL_NEGATIVE, JanusPolicy, Rollout, guided_logprobs, load_policy
from t2i_gcpo.policies.janus import left_pad
from t2i_gcpo.toy.models import tiny_janus_policy

# Same word count, so transformers' generate (which ignores left padding) sees no padding.
SAME_LENGTH = ["a red circle", "a blue star"]
MIXED_LENGTH = ["a red circle", "a big blue square on the left of a tree", "cat"]
NEGATIVES = ["a green triangle below a house", "dog", "a photo"]


@pytest.fixture
def policy() -> JanusPolicy:
    """A fresh 4x4-grid tiny Janus policy in fp32 (eval mode)."""
    return tiny_janus_policy(grid=4, seed=0)


def greedy(policy: JanusPolicy, prompts, **kwargs) -> Rollout:
    """Greedy rollout (top_k=1) of `prompts`."""
    return policy.sample(prompts, top_k=1, **kwargs)


def test_greedy_tokens_match_transformers_generate(policy):
    ids, mask = left_pad([policy.prompt_ids(p) for p in SAME_LENGTH], policy.pad_id, policy.device)
    expected = policy.model.generate(
        input_ids=ids,
        attention_mask=mask,
        generation_mode="image",
        guidance_scale=3.0,
        do_sample=False,
    )
    ours = greedy(policy, SAME_LENGTH, cfg_scale=3.0)
    assert ours.tokens.shape == (2, 16)
    assert torch.equal(ours.tokens, expected)
    # top_k=1 is greedy whatever the temperature and seed; so is a vanishing top_p.
    hot = policy.sample(SAME_LENGTH, cfg_scale=3.0, temperature=5.0, top_k=1)
    nucleus = policy.sample(SAME_LENGTH, cfg_scale=3.0, top_p=1e-6)
    assert torch.equal(hot.tokens, expected)
    assert torch.equal(nucleus.tokens, expected)


def test_recorded_logprobs_equal_teacher_forced_null_branch(policy):
    rollout = policy.sample(MIXED_LENGTH, samples_per_prompt=2, cfg_scale=4.0)
    assert rollout.tokens.shape == (6, 16)
    assert rollout.logp_pos.dtype == rollout.logp_neg.dtype == torch.float32
    assert rollout.prompt_index.tolist() == [0, 0, 1, 1, 2, 2]
    assert rollout.sample_prompts[2] == MIXED_LENGTH[1]
    assert rollout.sample_negatives is None
    pos = policy.token_logprobs(rollout.sample_prompts, rollout.tokens)
    neg = policy.token_logprobs(rollout.sample_prompts, rollout.tokens, NULL_NEGATIVE)
    torch.testing.assert_close(pos, rollout.logp_pos, **SAME_MATHS)
    torch.testing.assert_close(neg, rollout.logp_neg, **SAME_MATHS)
    assert (rollout.logp_pos - rollout.logp_neg).abs().mean() > 0.5


def test_token_logits_are_what_the_logprobs_are_gathered_from(policy):
    rollout = policy.sample(MIXED_LENGTH, samples_per_prompt=1)
    logits = policy.token_logits(rollout.sample_prompts, rollout.tokens)
    assert logits.shape == (3, 16, policy.codebook_size) and logits.dtype == torch.float32
    gathered = logits.log_softmax(-1).gather(-1, rollout.tokens[..., None])[..., 0]
    torch.testing.assert_close(gathered, policy.token_logprobs(MIXED_LENGTH, rollout.tokens))
    null = policy.token_logits(rollout.sample_prompts, rollout.tokens, NULL_NEGATIVE)
    assert (null - logits).abs().amax() > 0.1


def test_guided_logprobs_score_the_distribution_the_sampler_draws_from(policy):
    rollout = policy.sample(MIXED_LENGTH, negative_prompts=NEGATIVES, samples_per_prompt=2)
    prompts, tokens = rollout.sample_prompts, rollout.tokens
    cond = policy.token_logits(prompts, tokens)
    null = policy.token_logits(prompts, tokens, NULL_NEGATIVE)
    caption = policy.token_logits(prompts, tokens, rollout.sample_negatives)
    # By hand at one token: guided logits g = u + s (c - u), over the temperature.
    s, temperature, row, t = 4.0, 0.7, 3, 5
    g = (null[row, t] + s * (cond[row, t] - null[row, t])) / temperature
    by_hand = g[tokens[row, t]] - torch.logsumexp(g, dim=0)
    guided = policy.guided_logprobs(prompts, tokens, "null", s, temperature)
    assert guided.shape == (6, 16) and guided.dtype == torch.float32
    torch.testing.assert_close(guided[row, t], by_hand, **SAME_MATHS)
    assert torch.equal(policy.guided_logprobs(prompts, tokens, None, s, temperature), guided)
    # Scale 1 is the prompt's branch, scale 0 the negative's; captions replace the null prompt.
    torch.testing.assert_close(
        policy.guided_logprobs(prompts, tokens, None, 1.0), rollout.logp_pos, **SAME_MATHS
    )
    torch.testing.assert_close(
        policy.guided_logprobs(prompts, tokens, rollout.sample_negatives, 0.0),
        rollout.logp_neg,
        **SAME_MATHS,
    )
    # A rollout is scored with its own negative captions and guidance scale.
    g = caption[row, t] + rollout.cfg_scale * (cond[row, t] - caption[row, t])
    torch.testing.assert_close(
        guided_logprobs(policy, rollout)[row, t],
        g[tokens[row, t]] - torch.logsumexp(g, dim=0),
        **SAME_MATHS,
    )
    # The sampler records them from its own logits.
    torch.testing.assert_close(rollout.logp_guided, guided_logprobs(policy, rollout), **SAME_MATHS)
    hot = policy.sample(MIXED_LENGTH, samples_per_prompt=2, cfg_scale=s, temperature=temperature)
    torch.testing.assert_close(
        hot.logp_guided, guided_logprobs(policy, hot, temperature), **SAME_MATHS
    )
    # Differentiable through both branches.
    policy.guided_logprobs(prompts[:1], tokens[:1], "null", s).sum().backward()
    head = policy.model.model.generation_head.vision_head.weight
    assert head.grad is not None and head.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="temperature"):
        policy.guided_logprobs(prompts, tokens, "null", s, 0.0)


def test_recorded_logprobs_equal_teacher_forced_explicit_negatives(policy):
    rollout = policy.sample(MIXED_LENGTH, negative_prompts=NEGATIVES, samples_per_prompt=2)
    assert rollout.sample_negatives == [n for n in NEGATIVES for _ in range(2)]
    neg = policy.token_logprobs(rollout.sample_prompts, rollout.tokens, rollout.sample_negatives)
    null = policy.token_logprobs(rollout.sample_prompts, rollout.tokens, NULL_NEGATIVE)
    torch.testing.assert_close(neg, rollout.logp_neg, **SAME_MATHS)
    assert (neg - null).abs().mean() > 0.5
    assert (rollout.logp_pos - rollout.logp_neg).abs().mean() > 0.5


def test_cfg_scale_one_samples_the_positive_branch(policy):
    plain = greedy(policy, MIXED_LENGTH, cfg_scale=1.0)
    # With the prompt as its own negative the two branches agree, so any scale is unguided.
    self_negative = greedy(policy, MIXED_LENGTH, negative_prompts=MIXED_LENGTH, cfg_scale=7.0)
    guided = greedy(policy, MIXED_LENGTH, cfg_scale=7.0)
    assert torch.equal(plain.tokens, self_negative.tokens)
    assert not torch.equal(plain.tokens, guided.tokens)
    torch.testing.assert_close(self_negative.logp_pos, self_negative.logp_neg, **SAME_MATHS)


def test_seeded_generator_reproduces_tokens(policy):
    def draw(seed):
        generator = torch.Generator().manual_seed(seed)
        return policy.sample(SAME_LENGTH, samples_per_prompt=3, generator=generator).tokens

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_gradients_reach_head_and_backbone_never_vq(policy):
    policy.train()
    vq = policy.model.model.vqmodel
    assert not vq.training and policy.model.model.language_model.training
    rollout = policy.sample(SAME_LENGTH, samples_per_prompt=2)
    assert policy.model.training, "sample must leave the train mode as it found it"
    logp = policy.token_logprobs(rollout.sample_prompts, rollout.tokens)
    logp.sum().backward()
    inner = policy.model.model
    assert inner.generation_head.vision_head.weight.grad.abs().sum() > 0
    assert inner.generation_embeddings.weight.grad.abs().sum() > 0
    assert inner.language_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in vq.parameters())
    trainable = {id(p) for p in policy.trainable_parameters()}
    assert id(inner.generation_head.vision_head.weight) in trainable
    assert not trainable & {id(p) for p in vq.parameters()}
    policy.eval()
    assert not policy.model.training and not vq.training


def test_gradient_checkpointing_gives_the_same_gradients():
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))

    def layer_grad(checkpointing):
        base = tiny_janus_policy(grid=4, seed=0)
        policy = JanusPolicy(base.model, base.tokenizer, gradient_checkpointing=checkpointing)
        layer = policy.model.model.language_model.layers[0]
        assert layer.gradient_checkpointing == checkpointing
        policy.train()
        policy.token_logprobs(SAME_LENGTH, tokens).sum().backward()
        return layer.mlp.up_proj.weight.grad

    torch.testing.assert_close(layer_grad(True), layer_grad(False))


def test_left_padded_batch_matches_each_prompt_alone(policy):
    together = greedy(policy, MIXED_LENGTH, cfg_scale=3.0)
    lengths = {len(policy.prompt_ids(p)) for p in MIXED_LENGTH}
    assert len(lengths) == 3, "the prompts must need padding for this test to mean something"
    scored = policy.token_logprobs(MIXED_LENGTH, together.tokens)
    for i, prompt in enumerate(MIXED_LENGTH):
        alone = greedy(policy, [prompt], cfg_scale=3.0)
        assert torch.equal(alone.tokens[0], together.tokens[i])
        torch.testing.assert_close(alone.logp_pos[0], together.logp_pos[i], **SAME_MATHS)
        torch.testing.assert_close(alone.logp_neg[0], together.logp_neg[i], **SAME_MATHS)
        single = policy.token_logprobs([prompt], together.tokens[i : i + 1])
        torch.testing.assert_close(single[0], scored[i], **SAME_MATHS)


def test_bf16_sampling_records_float32_logprobs():
    policy = tiny_janus_policy(grid=4, seed=0, dtype=torch.bfloat16)
    rollout = policy.sample(SAME_LENGTH, cfg_scale=3.0)
    assert policy.dtype == torch.bfloat16
    assert rollout.logp_pos.dtype == torch.float32
    scored = policy.token_logprobs(rollout.sample_prompts, rollout.tokens)
    assert scored.dtype == torch.float32
    assert (scored - rollout.logp_pos).abs().mean() < 0.1


def test_prompt_formatting_uses_the_chat_template(policy):
    assert policy.prompt_ids("a red circle") == [1, 7, 21, 29, 4]  # bos a red circle boi
    assert policy.null_ids([1, 7, 21, 29, 4]) == [1, 3, 3, 3, 4]  # bos pad pad pad boi
    policy.tokenizer.chat_template = (
        "{% for m in messages %}<|User|>: {{ m['content'][0]['text'] }}\n\n{% endfor %}"
        "{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
    )
    assert policy.format_prompt("a red circle") == "<|User|>: a red circle\n\n<|Assistant|>:"


def test_decode_shape_and_range(policy):
    tokens = torch.randint(0, policy.codebook_size, (3, 16))
    images = policy.decode(tokens)
    assert images.shape == (3, 3, *policy.image_size) == (3, 3, 8, 8)
    assert images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert images.std() > 0
    with pytest.raises(ValueError, match="tokens must have shape"):
        policy.decode(tokens[:, :15])


def test_invalid_arguments_say_what_is_allowed(policy):
    with pytest.raises(ValueError, match="negative_prompts must be None"):
        policy.sample(SAME_LENGTH, negative_prompts=["only one"])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        policy.sample(SAME_LENGTH, temperature=0.0)
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 64\)"):
        policy.token_logprobs(SAME_LENGTH, torch.full((2, 16), 64))
    rollout = greedy(policy, SAME_LENGTH)
    with pytest.raises(ValueError, match=r"logp_neg must have the shape of tokens \(2, 16\)"):
        Rollout(**{**vars(rollout), "logp_neg": rollout.logp_neg[:, :-1]})


def test_save_load_round_trip_is_bit_identical(policy, tmp_path):
    tokens = greedy(policy, MIXED_LENGTH).tokens
    before = policy.token_logprobs(MIXED_LENGTH, tokens, NULL_NEGATIVE)
    saved = policy.save(tmp_path / "ckpt")
    policy.save(tmp_path / "ckpt")  # overwriting an existing checkpoint works too
    assert (saved / "config.json").is_file() and (saved / "model.safetensors").is_file()
    assert not list(tmp_path.glob("ckpt.*")), "no staging folder may be left behind"
    loaded = load_policy(saved)
    assert isinstance(loaded, JanusPolicy)
    after = loaded.token_logprobs(MIXED_LENGTH, tokens, NULL_NEGATIVE)
    assert torch.equal(before, after)
    assert loaded.boi_id == policy.boi_id and loaded.pad_id == policy.pad_id


def test_load_policy_errors_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder.*config.json.*hub id"):
        load_policy(str(tmp_path / "missing"))
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match=r"model_type 'bert'.*\['janus'\]"):
        load_policy(other)
    with pytest.raises(ValueError, match="unknown policy 'no-such-name'"):
        load_policy("no-such-name")


def test_rollout_records_positive_branch_entropy(policy):
    rollout = policy.sample(MIXED_LENGTH, samples_per_prompt=2, cfg_scale=3.0)
    assert rollout.entropy.shape == rollout.tokens.shape
    assert (rollout.entropy >= 0).all()
    assert (rollout.entropy <= torch.log(torch.tensor(float(policy.codebook_size))) + 1e-4).all()
    ids, mask, _ = policy.cfg_batch(MIXED_LENGTH, None, 2)
    with torch.no_grad():
        logits, _ = policy.prefill(ids, mask)  # the first token's logits of both branches
    logp = torch.log_softmax(logits[: rollout.num_samples].float(), dim=-1)
    torch.testing.assert_close(rollout.entropy[:, 0], -(logp.exp() * logp).sum(-1), **SAME_MATHS)


def test_the_static_sampler_draws_the_dynamic_loops_tokens(policy):
    """The preallocated-cache loop (fixed shapes, CUDA graphs on a GPU) is the same sampler:
    the same greedy and seeded tokens, the same log-probs up to rounding."""
    assert policy.sampler == "auto" and not policy.uses_static_sampler  # dynamic on the CPU
    runs = {}
    for sampler in ("dynamic", "static"):
        policy.sampler = sampler
        greedy = policy.sample(MIXED_LENGTH, cfg_scale=3.0, top_k=1, samples_per_prompt=2)
        seeded = policy.sample(MIXED_LENGTH, negative_prompts=NEGATIVES, samples_per_prompt=2,
                               generator=torch.Generator().manual_seed(5))  # fmt: skip
        runs[sampler] = (greedy, seeded)
    policy.sampler = "auto"
    for dynamic, static in zip(runs["dynamic"], runs["static"], strict=True):
        assert torch.equal(dynamic.tokens, static.tokens)
        torch.testing.assert_close(static.logp_pos, dynamic.logp_pos, **SAME_MATHS)
        torch.testing.assert_close(static.logp_neg, dynamic.logp_neg, **SAME_MATHS)
        torch.testing.assert_close(static.entropy, dynamic.entropy, **SAME_MATHS)
