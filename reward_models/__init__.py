"""Reward models: images (N, 3, H, W) in [0, 1], N prompts, N metadata dicts -> scores (N,).

Built-in rewards ("clip", "aesthetic", "oracle"), the registry that also loads rewards from files,
modules and installed plug-ins, and CombinedReward, the checked weighted sum the trainer calls.
open_clip is imported only when a CLIP-based reward is built.
"""

from reward_models.aesthetic import AestheticScore, load_aesthetic_head
from reward_models.aesthetic_head import AestheticMLP
from reward_models.base import RewardError, RewardFn, RewardModel
from reward_models.clip import ClipEncoder, CLIPScore
from reward_models.combine import CombinedReward, RewardResult, RewardSpec
from reward_models.oracle import OracleScore
from reward_models.registry import (
    BUILTIN_REWARDS,
    ENTRY_POINT_GROUP,
    RewardNotFoundError,
    load_reward,
    register_reward,
)

__all__ = [
    "BUILTIN_REWARDS",
    "ENTRY_POINT_GROUP",
    "AestheticMLP",
    "AestheticScore",
    "CLIPScore",
    "ClipEncoder",
    "CombinedReward",
    "OracleScore",
    "RewardError",
    "RewardFn",
    "RewardModel",
    "RewardNotFoundError",
    "RewardResult",
    "RewardSpec",
    "load_aesthetic_head",
    "load_reward",
    "register_reward",
]
