"""What one policy-gradient step does to the distribution the tokens are sampled from, when
sampling uses classifier-free guidance: the loss on the prompt's branch alone (rollout.logprobs
"positive", the reference recipe) against the loss on the guided distribution ("guided").

The shipped shapes policy samples 8 images of each of 16 training prompts with guidance
--cfg-scale; the oracle's strict reward gives group advantages A; one AdamW step at --lr on
-sum_i A_i mean_t log p(y_i,t) is taken from the same start in each mode. Printed: the change of
each sample's sequence log-prob under the prompt's branch, the null branch and the guided
distribution, averaged over the samples with A > 0 and with A < 0, and their gap (how much more
likely the better samples became). A step that only moves the prompt's branch moves the null
branch too (they share every weight), and guidance subtracts cfg_scale - 1 times that move.

    python benchmarks/guided_step.py [--cfg-scale 5] [--lr 1e-5 1e-4] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from t2i_gcpo.policies import NULL_NEGATIVE
from t2i_gcpo.policies.janus import cfg_logits, gather_logprobs
from t2i_gcpo.toy.assets import load_shapes_policy
from t2i_gcpo.toy.prompts import shapes_prompt_set
from t2i_gcpo.toy.rewards import ShapesOracle

GROUP = 8


@torch.no_grad()
def sequence_logprobs(policy, prompts, tokens, scale) -> dict[str, torch.Tensor]:
    cond = policy.token_logits(prompts, tokens)
    null = policy.token_logits(prompts, tokens, NULL_NEGATIVE)
    guided = cfg_logits(torch.cat([cond, null]), scale)
    return {
        name: gather_logprobs(logits, tokens).sum(1)
        for name, logits in (("prompt", cond), ("null", null), ("guided", guided))
    }


def one_step(mode: str, lr: float, scale: float, prompts, tokens, advantages) -> dict:
    policy = load_shapes_policy()
    before = sequence_logprobs(policy, prompts, tokens, scale)
    policy.train()
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=lr, weight_decay=0.0)
    if mode == "positive":
        logp = policy.token_logprobs(prompts, tokens)
    else:
        logp = policy.guided_logprobs(prompts, tokens, NULL_NEGATIVE, scale)
    (-(advantages[:, None] * logp).mean(1).sum() / len(prompts)).backward()
    torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), 1.0)
    optimizer.step()
    policy.eval()
    after = sequence_logprobs(policy, prompts, tokens, scale)
    better, worse = advantages > 0, advantages < 0
    out = {}
    for name in before:
        change = after[name] - before[name]
        out[name] = (change[better].mean().item(), change[worse].mean().item())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg-scale", type=float, default=5.0)
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-5, 1e-4])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    records = shapes_prompt_set("train")
    generator = torch.Generator().manual_seed(0)
    chosen = [records[i] for i in torch.randperm(len(records), generator=generator)[:16].tolist()]
    policy = load_shapes_policy()
    rollout = policy.sample(
        [r.prompt for r in chosen], samples_per_prompt=GROUP, cfg_scale=args.cfg_scale,
        generator=generator,
    )  # fmt: skip
    prompts = rollout.sample_prompts
    metadata = [{**chosen[i].metadata, "prompt": chosen[i].prompt}
                for i in rollout.prompt_index.tolist()]  # fmt: skip
    rewards = ShapesOracle()(policy.decode(rollout.tokens), prompts, metadata).view(-1, GROUP)
    advantages = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)
    print(
        f"# 16 training prompts x {GROUP} samples at guidance {args.cfg_scale}: oracle reward "
        f"{rewards.mean().item():.3f}, {int((rewards.std(1) > 0).sum())} groups with a signal"
    )
    print("| loss on | lr | branch | change A > 0 (nats) | change A < 0 | gap |")
    print("|---|---|---|---|---|---|")
    for lr in args.lr:
        for mode in ("positive", "guided"):
            result = one_step(mode, lr, args.cfg_scale, prompts, rollout.tokens,
                              advantages.flatten())  # fmt: skip
            for name, (up, down) in result.items():
                print(f"| {mode} | {lr:g} | {name} | {up:+.2f} | {down:+.2f} | {up - down:+.2f} |")
    print(f"(measured in {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
