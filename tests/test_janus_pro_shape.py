"""Janus-Pro-1B's shape end to end on the CPU: its configuration (vocabulary 102,400, 16,384 VQ
codes, a 24 x 24 grid, 384-pixel images) with the language model cut to one layer, random
weights, its chat format and image-start token; both samplers and teacher forcing agree."""

import pytest
import torch
from tolerances import SAME_MATHS

from t2i_gcpo.memory import janus_shape
from t2i_gcpo.toy.models import janus_pro_config, janus_pro_policy


@pytest.fixture(scope="module")
def policy():
    return janus_pro_policy("1b", num_layers=1, seed=0).eval()


def test_the_configuration_is_janus_pro_1b_with_one_layer(policy):
    config = policy.model.config
    assert config.text_config.vocab_size == 102400 and config.text_config.hidden_size == 2048
    assert config.vq_config.num_embeddings == 16384 and policy.grid == (24, 24)
    assert policy.image_size == (384, 384) and policy.default_cfg_scale == 5.0
    full = janus_shape(janus_pro_config("1b"))
    assert full.layers == 24 and 1.8e9 < full.total < 2.1e9  # about 2B with its towers


def test_prompts_use_the_chat_format_and_end_with_the_image_start(policy):
    ids = policy.prompt_ids("a photo of a red circle")
    text = policy.tokenizer.decode(ids)
    assert ids[0] == 100000 and ids[-1] == 100016  # BOS ... <begin_of_image>
    assert text.index("<|User|>") < text.index("red circle") < text.index("<|Assistant|>")
    assert policy.null_ids(ids)[1:-1] == [policy.pad_id] * (len(ids) - 2)


def test_samplers_and_teacher_forcing_agree_on_the_full_grid(policy):
    prompts = ["a photo of a red circle"]
    policy.sampler = "dynamic"
    dynamic = policy.sample(prompts, cfg_scale=5.0, top_k=1)
    policy.sampler = "static"
    static = policy.sample(prompts, cfg_scale=5.0, top_k=1)
    assert dynamic.tokens.shape == (1, 576) and torch.equal(dynamic.tokens, static.tokens)
    torch.testing.assert_close(static.logp_pos, dynamic.logp_pos, **SAME_MATHS)
    with torch.no_grad():
        teacher = policy.token_logprobs(prompts, dynamic.tokens)
    torch.testing.assert_close(teacher, dynamic.logp_pos, **SAME_MATHS)
    assert dynamic.tokens.max() < 16384
