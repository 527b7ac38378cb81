"""CLIPScore: max(scale * cos(image, text), 0) with any open_clip model, and the shared encoder.

`ClipEncoder` loads one open_clip model once and turns images (N, 3, H, W) in [0, 1] and prompts
into unit embeddings, preprocessing on tensors (resize, crop, normalise) without a PIL round trip.
`AestheticScore` reuses it for its image embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reward_models.base import RewardModel
from reward_models.registry import register_reward

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
RESIZE_MODES = ("shortest", "longest", "squash")
INTERPOLATIONS = {"bicubic": "bicubic", "bilinear": "bilinear", "random": "bicubic"}
SCHEMAS = ("local-dir:", "hf-hub:")


def resolve_dtype(dtype: torch.dtype | str | None, model: nn.Module | None = None) -> torch.dtype:
    """dtype, its name, or None (the model's dtype, else float32) -> torch.dtype."""
    if dtype is None:
        return _module_dtype(model) if model is not None else torch.float32
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype={dtype!r} is not supported; expected one of {sorted(DTYPES)}")


def resolve_device(device: torch.device | str | None, model: nn.Module | None = None):
    """device, its name, or None (the model's device, else cuda when available) -> device."""
    if device is not None:
        return torch.device(device)
    if model is not None:
        return next(model.parameters()).device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _module_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter."""
    visual = getattr(module, "visual", module)
    for param in visual.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def schema_name(model_name: str | Path) -> str:
    """A model name as open_clip reads it: an existing folder becomes "local-dir:<folder>"."""
    name = str(model_name)
    if not name.startswith(SCHEMAS) and Path(name).expanduser().is_dir():
        return "local-dir:" + str(Path(name).expanduser())
    return name


def model_source(model_name: str | Path, pretrained: str | Path | None) -> tuple[str, str | None]:
    """Check and normalise (model_name, pretrained): `pretrained` (a tag or a checkpoint file) is
    required with a built-in architecture name and refused with a "local-dir:"/"hf-hub:" source."""
    name = schema_name(model_name)
    if name.startswith(SCHEMAS):
        if pretrained is not None:
            raise ValueError(
                f"pretrained={pretrained!r} cannot be used with model_name={name!r}: the weights "
                "come from that source; pass pretrained only with a built-in architecture name"
            )
        return name, None
    if pretrained is None:
        raise ValueError(
            f"model_name={name!r} is an architecture name without weights; pass pretrained= a tag "
            "(e.g. 'openai') or a checkpoint file, or use 'local-dir:<folder>' or "
            "'hf-hub:<org/repo>'"
        )
    checkpoint = Path(pretrained).expanduser()
    return name, str(checkpoint) if checkpoint.is_file() else str(pretrained)


def load_open_clip(
    model_name: str | Path,
    pretrained: str | Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Build an open_clip model with its weights, in eval mode, frozen, on device and dtype."""
    import open_clip

    name, pretrained = model_source(model_name, pretrained)
    model = open_clip.create_model(
        name, pretrained=pretrained, device=device, require_pretrained=True, weights_only=True
    )
    model = model.to(dtype=dtype).eval()
    model.requires_grad_(False)
    return model


def load_open_clip_tokenizer(model_name: str | Path) -> Callable[[list[str]], torch.Tensor]:
    """The tokenizer that open_clip pairs with `model_name` (a local folder is read offline)."""
    import open_clip

    return open_clip.get_tokenizer(schema_name(model_name))


@dataclass(frozen=True)
class ImagePreprocess:
    """images (N, 3, H, W) in [0, 1] -> (N, 3, h, w) normalised input of an open_clip model.

    Mirrors open_clip's eval transform on tensors: resize (`resize_mode` "shortest" then centre
    crop, "longest" then centre pad with `fill` in [0, 1], or "squash"), then (x - mean) / std.
    """

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    fill: float = 0.0

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode={self.resize_mode!r}; expected one of {RESIZE_MODES}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation={self.interpolation!r}; expected one of {tuple(INTERPOLATIONS)}"
            )

    @classmethod
    def from_model(cls, model: nn.Module) -> ImagePreprocess:
        """Read size, mean, std, interpolation, resize mode and fill from an open_clip model
        (open_clip's PreprocessCfg defaults where the model does not say)."""
        import open_clip
        from open_clip.transform import PreprocessCfg

        cfg = {**vars(PreprocessCfg()), **open_clip.get_model_preprocess_cfg(model)}
        size = cfg["size"]
        size = (size, size) if isinstance(size, int) else tuple(size)
        mean, std = cfg["mean"], cfg["std"]
        mean = (mean,) * 3 if isinstance(mean, float | int) else tuple(mean)
        std = (std,) * 3 if isinstance(std, float | int) else tuple(std)
        return cls(
            size, mean, std, cfg["interpolation"], cfg["resize_mode"], cfg["fill_color"] / 255
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = fit_to_size(
            images.float(), self.size, self.resize_mode, self.interpolation, self.fill
        )
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std


def resize(images: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """images (N, C, H, W) in [0, 1] -> (N, C, *size), antialiased, clamped to [0, 1]."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    mode = INTERPOLATIONS[interpolation]
    out = F.interpolate(images, size=size, mode=mode, align_corners=False, antialias=True)
    return out.clamp(0, 1)


def center_crop_or_pad(images: torch.Tensor, size: tuple[int, int], fill: float) -> torch.Tensor:
    """images (N, C, H, W) -> (N, C, *size): pad with `fill` where smaller, centre-crop where
    larger."""
    height, width = images.shape[-2:]
    pad_h, pad_w = max(size[0] - height, 0), max(size[1] - width, 0)
    if pad_h or pad_w:
        padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        images = F.pad(images, padding, value=fill)
        height, width = images.shape[-2:]
    top, left = round((height - size[0]) / 2), round((width - size[1]) / 2)
    return images[..., top : top + size[0], left : left + size[1]]


def fit_to_size(
    images: torch.Tensor, size: tuple[int, int], resize_mode: str, interpolation: str, fill: float
) -> torch.Tensor:
    """images (N, C, H, W) in [0, 1] -> (N, C, *size) as open_clip's eval transform would."""
    if resize_mode == "squash":
        return resize(images, size, interpolation)
    height, width = images.shape[-2:]
    ratios = (height / size[0], width / size[1])
    ratio = min(ratios) if resize_mode == "shortest" else max(ratios)
    scaled = resize(images, (round(height / ratio), round(width / ratio)), interpolation)
    return center_crop_or_pad(scaled, size, fill)


class ClipEncoder:
    """One open_clip model, loaded once: images and prompts -> unit embeddings (N, D), float32.

    Give `model_name` (+ `pretrained`) to load, or a built `model` (and `tokenizer` for text) to
    share one CLIP between rewards. `device`/`dtype` default to the model's own when a model is
    given, else to cuda-if-available and float32; a given model is put in eval mode, and moved
    only when `device` or `dtype` is given.
    """

    def __init__(
        self,
        model_name: str | Path | None = None,
        pretrained: str | Path | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        batch_size: int = 64,
        model: nn.Module | None = None,
        tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if model is None and model_name is None:
            raise ValueError("give model_name (with pretrained where needed) or a built model=")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; expected a positive integer")
        self.device = resolve_device(device, model)
        self.dtype = resolve_dtype(dtype, model)
        if model is None:
            model = load_open_clip(model_name, pretrained, self.device, self.dtype)
        elif device is not None or dtype is not None:
            model = model.to(device=self.device, dtype=self.dtype)
        self.model = model.eval()
        self.model_name = model_name
        self.batch_size = batch_size
        self.preprocess = preprocess or ImagePreprocess.from_model(self.model)
        self._tokenizer = tokenizer

    @property
    def tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        """The text tokenizer, loaded on first use from `model_name` unless one was given."""
        if self._tokenizer is None:
            if self.model_name is None:
                raise ValueError("a model= was given without tokenizer=; text needs a tokenizer")
            self._tokenizer = load_open_clip_tokenizer(self.model_name)
        return self._tokenizer

    @torch.no_grad()
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [0, 1] -> L2-normalised image embeddings (N, D), float32."""
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = self.preprocess(images[start : start + self.batch_size].to(self.device))
            out.append(self.model.encode_image(batch.to(self.dtype)).float())
        return F.normalize(torch.cat(out), dim=-1)

    @torch.no_grad()
    def text_features(self, prompts: Sequence[str]) -> torch.Tensor:
        """N prompts -> L2-normalised text embeddings (N, D), float32; each distinct prompt is
        encoded once."""
        unique = list(dict.fromkeys(prompts))
        out = []
        for start in range(0, len(unique), self.batch_size):
            tokens = self.tokenizer(unique[start : start + self.batch_size]).to(self.device)
            out.append(self.model.encode_text(tokens).float())
        features = F.normalize(torch.cat(out), dim=-1)
        index = {prompt: i for i, prompt in enumerate(unique)}
        return features[torch.tensor([index[p] for p in prompts], device=features.device)]


class CLIPScore(RewardModel):
    """images (N, 3, H, W) in [0, 1], prompts -> max(scale * cos(image, prompt), 0) (N,).

    model_name: "local-dir:<folder>" (or the folder itself), "hf-hub:<org/repo>", or a built-in
    open_clip architecture with `pretrained` a tag (e.g. "ViT-L-14", "openai") or a local
    checkpoint file. Alternatively pass a built `model` and its `tokenizer` (see ClipEncoder).
    Scores are float32 on the images' device.
    """

    name = "clip"

    def __init__(
        self,
        model_name: str | Path | None = None,
        pretrained: str | Path | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        scale: float = 100.0,
        batch_size: int = 64,
        model: nn.Module | None = None,
        tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.encoder = ClipEncoder(
            model_name, pretrained, device, dtype, batch_size, model, tokenizer, preprocess
        )
        self.scale = float(scale)

    @property
    def model(self) -> nn.Module:
        return self.encoder.model

    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> torch.Tensor:
        if len(prompts) != len(images):
            raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
        image = self.encoder.image_features(images)
        text = self.encoder.text_features(prompts)
        scores = (self.scale * (image * text).sum(dim=-1)).clamp_min(0)
        return scores.to(images.device)


@register_reward("clip")
def clip_reward(model_name: str | Path | None = None, **kwargs) -> CLIPScore:
    """The "clip" reward: CLIPScore of an open_clip model (see CLIPScore for the arguments);
    e.g. kwargs {model_name: ViT-L-14, pretrained: openai}, or {model_name: <local folder>}."""
    if model_name is None and kwargs.get("model") is None:
        raise ValueError(
            "the 'clip' reward needs model_name: an open_clip architecture with pretrained "
            "(e.g. {model_name: ViT-L-14, pretrained: openai}), a local folder, or "
            "'hf-hub:<org/repo>'; the shapes world's CLIP is the reward 'shapes-clip'"
        )
    return CLIPScore(model_name, **kwargs)
