"""Reward models: images (N, 3, H, W) in [0, 1], N prompts, N metadata dicts -> scores (N,).

Built-in rewards ("clip", "aesthetic", "pickscore", "hps", "remote"), the registry that also
loads rewards from files, modules and installed plug-ins, and CombinedReward, the checked
weighted sum the trainer calls.
A reward that can also say *why* an image is right or wrong (a GenEval-style judge) has a
`judge` method returning one `Verdict` per image. This package imports nothing from t2i_gcpo;
open_clip is imported only when a CLIP-based reward is built.
"""

from reward_models.aesthetic import AestheticScore, load_aesthetic_head
from reward_models.aesthetic_head import AestheticMLP
from reward_models.base import (
    Judge,
    RewardError,
    RewardFn,
    RewardModel,
    Verdict,
    WrongVersions,
)
from reward_models.clip import ClipEncoder, CLIPScore
from reward_models.combine import CombinedReward, RewardResult, RewardSpec
from reward_models.preference import HPSScore, PickScore
from reward_models.registry import (
    ENTRY_POINT_GROUP,
    REWARDS,
    PluginRegistry,
    RewardNotFoundError,
    load_reward,
    register_reward,
)
from reward_models.remote import RemoteReward

__all__ = [
    "ENTRY_POINT_GROUP",
    "REWARDS",
    "AestheticMLP",
    "AestheticScore",
    "CLIPScore",
    "ClipEncoder",
    "HPSScore",
    "CombinedReward",
    "Judge",
    "PickScore",
    "PluginRegistry",
    "RemoteReward",
    "RewardError",
    "RewardFn",
    "RewardModel",
    "RewardNotFoundError",
    "RewardResult",
    "RewardSpec",
    "Verdict",
    "WrongVersions",
    "load_aesthetic_head",
    "load_reward",
    "register_reward",
]
