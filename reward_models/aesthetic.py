"""AestheticScore: the LAION improved-aesthetic-predictor head over L2-normalised CLIP embeddings.

The public head (christophschuhmann/improved-aesthetic-predictor, "sac+logos+ava1-l14-linearMSE")
is a plain state dict with keys layers.{0,2,4,6,7}.{weight,bias} over CLIP ViT-L/14 image
embeddings (768-d); the shapes world's head has the same layout over its tiny CLIP's embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from reward_models.aesthetic_head import AestheticMLP
from reward_models.base import RewardModel
from reward_models.clip import ClipEncoder
from reward_models.registry import register_reward

HEAD_KEYS = frozenset(f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias"))
TORCH_SUFFIXES = (".pth", ".pt", ".bin")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A tensor state dict from .safetensors or a torch file (.pth/.pt/.bin, weights only), on
    CPU; nothing is unpickled beyond tensors and plain containers."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"head_path={str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path, device="cpu")
    if path.suffix in TORCH_SUFFIXES:
        return torch.load(path, map_location="cpu", weights_only=True)
    raise ValueError(
        f"head_path={str(path)!r} has suffix {path.suffix!r}; expected .safetensors or one of "
        f"{TORCH_SUFFIXES} (a torch state dict, loaded with weights_only=True)"
    )


def load_aesthetic_head(path: str | Path) -> AestheticMLP:
    """The aesthetic MLP from a state dict in the public layout, in eval mode, frozen, float32;
    its input size is read off layers.0.weight."""
    state = load_state_dict_file(path)
    if not isinstance(state, dict) or set(state) != HEAD_KEYS:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"head_path={str(path)!r} holds {keys}; expected the LAION aesthetic head's state "
            f"dict with keys {sorted(HEAD_KEYS)}"
        )
    head = AestheticMLP(input_size=state["layers.0.weight"].shape[1])
    head.load_state_dict({k: v.float() for k, v in state.items()})
    head.eval()
    head.requires_grad_(False)
    return head


class AestheticScore(RewardModel):
    """images (N, 3, H, W) in [0, 1] -> aesthetic scores (N,): head(normalise(CLIP image emb)).

    head_path: the head's state dict (.pth or .safetensors, public layout). The CLIP is given as
    for CLIPScore: `clip_model` (+ `pretrained`), e.g. "ViT-L-14" + "openai" for the public head,
    or a built `model` shared with a CLIPScore. Scores are float32 on the images' device.
    """

    name = "aesthetic"

    def __init__(
        self,
        head_path: str | Path,
        clip_model: str | Path | None = None,
        pretrained: str | Path | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        batch_size: int = 64,
        model: nn.Module | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.encoder = ClipEncoder(
            clip_model, pretrained, device, dtype, batch_size, model, preprocess=preprocess
        )
        self.head = load_aesthetic_head(head_path).to(self.encoder.device)
        embed_dim = getattr(getattr(self.encoder.model, "visual", None), "output_dim", None)
        if embed_dim is not None and embed_dim != self.head.input_size:
            raise ValueError(
                f"head_path={str(head_path)!r} expects {self.head.input_size}-d embeddings but "
                f"the CLIP model gives {embed_dim}-d ones; pair the head with the CLIP it was "
                "trained on (ViT-L-14 for the public LAION head)"
            )

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> torch.Tensor:
        embeddings = self.encoder.image_features(images)
        return self.head(embeddings).to(images.device)


@register_reward("aesthetic")
def aesthetic_reward(head_path: str | Path, **kwargs) -> AestheticScore:
    """The "aesthetic" reward: AestheticScore; the LAION setup is head_path=<public head>,
    clip_model="ViT-L-14", pretrained="openai". The shapes world's head is 'shapes-aesthetic'."""
    return AestheticScore(head_path, **kwargs)
