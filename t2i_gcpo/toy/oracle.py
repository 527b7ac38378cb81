"""Ground truth for the shapes world: is each named object drawn, in its colour, shape and place?

Works on any decoded image (3, H, W) in [0, 1], renders and VQ reconstructions alike: pixels are
assigned to the nearest palette colour within a tolerance, each named object is looked for in its
named quadrant, and its shape is read off its silhouette.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from t2i_gcpo.toy.scenes import BACKGROUND, COLORS, POSITIONS, SHAPES, objects_from_metadata

PALETTE = torch.tensor([BACKGROUND, *COLORS.values()], dtype=torch.float32) / 255.0
COLOR_TOLERANCE = 0.30  # max RGB distance (in [0, 1] units) for a pixel to take a palette colour
MIN_OBJECT_SHARE = 0.02  # an object must cover at least this share of the image
CORNER = 0.2  # corner patches, as a fraction of the bounding box side

# Silhouette features (fill, top-half fill, bottom-half fill, corner fill) of ideal shapes.
_PROTOTYPES = {
    "circle": torch.tensor([0.785, 0.785, 0.785, 0.05]),
    "square": torch.tensor([1.0, 1.0, 1.0, 1.0]),
    "triangle": torch.tensor([0.5, 0.25, 0.75, 0.25]),
}


@dataclass
class ObjectCheck:
    """The verdict on one named object; mask (H, W) marks its pixels found in its quadrant."""

    color_found: bool
    shape: str | None
    correct: bool
    mask: torch.Tensor


@dataclass
class OracleResult:
    """Per-object verdicts, strict accuracy (all right) and the share of objects right."""

    objects: list[ObjectCheck]

    @property
    def strict(self) -> float:
        return float(all(check.correct for check in self.objects))

    @property
    def share(self) -> float:
        return sum(check.correct for check in self.objects) / len(self.objects)

    @property
    def masks(self) -> torch.Tensor:
        """(K, H, W) bool: the pixels of each named object found in the image."""
        return torch.stack([check.mask for check in self.objects])


def palette_labels(image: torch.Tensor) -> torch.Tensor:
    """image (3, H, W) in [0, 1] -> labels (H, W): 0 background, 1.. colours, -1 unassigned."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W); got shape {tuple(image.shape)}")
    pixels = image.detach().float().cpu().permute(1, 2, 0)
    dist = torch.cdist(pixels.reshape(-1, 3), PALETTE).reshape(*pixels.shape[:2], -1)
    best, labels = dist.min(dim=-1)
    return torch.where(best <= COLOR_TOLERANCE, labels, torch.full_like(labels, -1))


def quadrant_mask(position: str, height: int, width: int) -> torch.Tensor:
    """(H, W) bool, True inside the named quadrant."""
    row, col = POSITIONS[position]
    mask = torch.zeros(height, width, dtype=torch.bool)
    rows = slice(row * height // 2, (row + 1) * height // 2)
    cols = slice(col * width // 2, (col + 1) * width // 2)
    mask[rows, cols] = True
    return mask


def silhouette_features(mask: torch.Tensor) -> torch.Tensor:
    """mask (H, W) bool of one object -> (fill, top fill, bottom fill, corner fill) of its box."""
    rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].float()
    h, w = box.shape
    ch, cw = max(1, round(CORNER * h)), max(1, round(CORNER * w))
    corners = torch.stack(
        [box[:ch, :cw].mean(), box[:ch, -cw:].mean(), box[-ch:, :cw].mean(), box[-ch:, -cw:].mean()]
    )
    return torch.stack(
        [box.mean(), box[: h // 2].mean(), box[(h + 1) // 2 :].mean(), corners.mean()]
    )


def classify_shape(mask: torch.Tensor) -> str:
    """mask (H, W) bool of one object -> the nearest prototype shape name."""
    features = silhouette_features(mask)
    return min(SHAPES, key=lambda s: torch.linalg.vector_norm(features - _PROTOTYPES[s]).item())


def evaluate(image: torch.Tensor, metadata: dict) -> OracleResult:
    """image (3, H, W) in [0, 1] + a prompt's metadata -> per-object verdicts."""
    objects = objects_from_metadata(metadata)
    labels = palette_labels(image)
    height, width = labels.shape
    min_pixels = MIN_OBJECT_SHARE * height * width
    color_index = {name: i + 1 for i, name in enumerate(COLORS)}
    checks = []
    for obj in objects:
        mask = (labels == color_index[obj.color]) & quadrant_mask(obj.position, height, width)
        found = mask.sum().item() >= min_pixels
        shape = classify_shape(mask) if found else None
        checks.append(ObjectCheck(found, shape, found and shape == obj.shape, mask))
    return OracleResult(checks)


def evaluate_batch(images: torch.Tensor, metadata: Sequence[dict]) -> list[OracleResult]:
    """images (N, 3, H, W), N metadata dicts -> N results."""
    if len(images) != len(metadata):
        raise ValueError(f"got {len(images)} images but {len(metadata)} metadata records")
    return [evaluate(image, meta) for image, meta in zip(images, metadata, strict=True)]
