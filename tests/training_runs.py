"""What the training tests share: a file of rewards and a tiny saved policy to train, and the
short `t2i-gcpo train` command line that trains it."""

from pathlib import Path

from t2i_gcpo.toy.models import tiny_janus_policy

REWARDS = '''
import os
import signal

import torch

CALLS = 0


def redness(images, prompts, metadata):
    """Mean red minus mean green and blue: a continuous reward any image gets."""
    return images[:, 0].mean(dim=(1, 2)) - images[:, 1:].mean(dim=(1, 2, 3))


def redness_then_stop(images, prompts, metadata):
    """redness, and SIGTERM to this process on call number $STOP_AT_CALL (a kill mid-run)."""
    global CALLS
    CALLS += 1
    if CALLS == int(os.environ.get("STOP_AT_CALL", "0")):
        os.kill(os.getpid(), signal.SIGTERM)
    return redness(images, prompts, metadata)


def constant(images, prompts, metadata):
    """The same reward for every image: no group carries a signal."""
    return torch.full((len(images),), 0.5)


def flat_then_varied(images, prompts, metadata):
    """Uniform rewards on the first call (no group informative), redness after."""
    global CALLS
    CALLS += 1
    return constant(images, prompts, metadata) if CALLS == 1 else redness(images, prompts, metadata)


def first_nan(images, prompts, metadata):
    """redness with NaN for the first image."""
    scores = redness(images, prompts, metadata)
    scores[0] = float("nan")
    return scores


def fails_at_call_3(images, prompts, **kwargs):
    """redness (TRL-style signature), but on call $FAIL_AT: NaN ($FAIL_HOW=nan) or raise."""
    global CALLS
    CALLS += 1
    if CALLS == int(os.environ.get("FAIL_AT", "3")):
        if os.environ.get("FAIL_HOW") == "nan":
            return torch.full((len(images),), float("nan"))
        raise RuntimeError("the scoring service is down")
    return redness(images, prompts, kwargs["metadata"])


class RedJudge:
    """A judge: right when the image is redder than green and blue; its red pixels are the one
    object it finds."""

    def __call__(self, images, prompts, metadata):
        return redness(images, prompts, metadata)

    def judge(self, images, prompts, metadata):
        from reward_models import Verdict

        red = images[:, 0] > images[:, 1:].mean(dim=1)
        scores = redness(images, prompts, metadata)
        return [Verdict(bool(scores[i] > 0), red[i][None]) for i in range(len(images))]
'''


def write_run_assets(root: Path) -> dict[str, Path]:
    """A saved tiny policy and the REWARDS file under `root`."""
    tiny_janus_policy(grid=4, seed=0).save(root / "tiny")
    (root / "rewards.py").write_text(REWARDS, encoding="utf-8")
    return {"policy": root / "tiny", "rewards": root / "rewards.py"}


def train_args(
    assets, out: Path, steps: int = 3, reward: str = "redness", *extra: str, lr: str = "1e-3"
) -> list:
    """A small, fast `train` command line on the tiny policy (assets: write_run_assets')."""
    return [
        "train",
        "--policy.name", str(assets["policy"]),
        "--rewards.models", f"[{assets['rewards']}:{reward}]",
        "--prompts.eval", "null",
        "--rollout.group_size", "4",
        "--rollout.prompts_per_step", "2",
        "--optim.steps", str(steps),
        "--optim.lr", lr,
        "--optim.updates_per_rollout", "1",
        "--logging.output_dir", str(out),
        "--logging.trackers", "none",
        "--logging.progress_bar", "false",
        "--logging.sample_every", "0",
        "--logging.heatmap_every", "0",
        *extra,
    ]  # fmt: skip
