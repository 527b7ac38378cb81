"""PatchVQ: a local image tokenizer. Each token encodes only its own patch and decodes only to it.

The image is cut into non-overlapping `patch x patch` patches; a patch's token is the index of
the nearest codebook entry (squared pixel distance) and a token decodes to that entry's pixels.
No operation mixes positions (there is no attention, normalisation or convolution across
patches), so changing pixels inside one patch changes no other token, and replacing one token
changes no pixel outside its patch. The codebook is learnt by k-means on patches of rendered
scenes (`fit_codebook`). It serves a policy the way a VQ model does: ids in, pixels out.

Saved as a folder: config.json ({"type": "patch_vq", "patch_size", "codebook_size",
"image_size"}) and model.safetensors (the codebook); published under the entry-point group
"t2i_gcpo.image_tokenizers" as "patch_vq", so that a policy folder holding one loads it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


class PatchVQ(nn.Module):
    """images (N, 3, H, W) in [0, 1] <-> token ids (N, (H / patch) * (W / patch)), raster order."""

    kind = "patch_vq"

    def __init__(self, codebook: torch.Tensor, patch_size: int, image_size: int) -> None:
        super().__init__()
        if codebook.ndim != 2 or codebook.shape[1] != 3 * patch_size * patch_size:
            raise ValueError(
                f"codebook must be (K, 3 * {patch_size}^2), got {tuple(codebook.shape)}"
            )
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch_size}")
        self.patch_size, self.image_size = patch_size, image_size
        self.register_buffer("codebook", codebook.float().contiguous())

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[0]

    @property
    def grid(self) -> tuple[int, int]:
        side = self.image_size // self.patch_size
        return side, side

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) -> patch vectors (N, T, 3 * patch^2), raster order."""
        n, channels, height, width = images.shape
        if (height, width) != (self.image_size, self.image_size) or channels != 3:
            raise ValueError(
                f"images must be (N, 3, {self.image_size}, {self.image_size}); "
                f"got {tuple(images.shape)}"
            )
        p = self.patch_size
        blocks = images.reshape(n, 3, height // p, p, width // p, p).permute(0, 2, 4, 1, 3, 5)
        return blocks.reshape(n, (height // p) * (width // p), 3 * p * p)

    def unpatch(self, vectors: torch.Tensor) -> torch.Tensor:
        """patch vectors (N, T, 3 * patch^2) -> images (N, 3, H, W)."""
        n, p, side = vectors.shape[0], self.patch_size, self.image_size // self.patch_size
        blocks = vectors.reshape(n, side, side, 3, p, p).permute(0, 3, 1, 4, 2, 5)
        return blocks.reshape(n, 3, self.image_size, self.image_size)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [0, 1] -> token ids (N, T) long: each patch's nearest entry."""
        vectors = self.patches(images.to(self.codebook).float())
        return nearest_code(vectors.reshape(-1, vectors.shape[-1]), self.codebook).view(
            vectors.shape[:2]
        )

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids (N, T) -> images (N, 3, H, W) in [0, 1]: each token's codebook pixels."""
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise ValueError(f"token ids must lie in [0, {self.codebook_size})")
        return self.unpatch(self.codebook[tokens.to(self.codebook.device)]).clamp(0, 1)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write config.json and model.safetensors into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "type": self.kind,
            "patch_size": self.patch_size,
            "codebook_size": self.codebook_size,
            "image_size": self.image_size,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        save_file({"codebook": self.codebook.cpu().contiguous()}, folder / WEIGHTS_FILE)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> PatchVQ:
        """Load a folder written by save_pretrained (safetensors only)."""
        folder = Path(folder)
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        codebook = load_file(folder / WEIGHTS_FILE)["codebook"]
        if codebook.shape[0] != config["codebook_size"]:
            raise ValueError(
                f"{folder}: the codebook has {codebook.shape[0]} entries, config.json says "
                f"{config['codebook_size']}"
            )
        return cls(codebook, config["patch_size"], config["image_size"])


def nearest_code(vectors: torch.Tensor, codebook: torch.Tensor, chunk: int = 16384):
    """vectors (M, D), codebook (K, D) -> index (M,) of each vector's nearest entry (squared
    distance; ties to the lower index)."""
    norms = (codebook * codebook).sum(dim=1)
    out = []
    for start in range(0, len(vectors), chunk):
        part = vectors[start : start + chunk]
        distance = norms[None, :] - 2.0 * part @ codebook.T  # + |v|^2, the same for every entry
        out.append(distance.argmin(dim=1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def fit_codebook(
    vectors: torch.Tensor, size: int, iterations: int = 25, seed: int = 0
) -> tuple[torch.Tensor, float]:
    """k-means of patch vectors (M, D) into `size` entries: k-means++ seeding on a subsample,
    then Lloyd iterations; an entry left empty is re-seeded at the worst-fitted vector.
    Returns (codebook (size, D), mean squared error per pixel)."""
    generator = torch.Generator().manual_seed(seed)
    vectors = vectors.float()
    unique = torch.unique(vectors, dim=0)
    if len(unique) <= size:  # few distinct patches: each gets an entry of its own
        pad = unique[torch.randint(len(unique), (size - len(unique),), generator=generator)]
        return torch.cat([unique, pad]), 0.0
    codebook = _kmeans_plus_plus(vectors, size, generator)
    for _ in range(iterations):
        index = nearest_code(vectors, codebook)
        sums = torch.zeros_like(codebook).index_add_(0, index, vectors)
        counts = torch.bincount(index, minlength=size).float()
        filled = counts > 0
        codebook[filled] = sums[filled] / counts[filled, None]
        if (~filled).any():
            errors = (vectors - codebook[index]).pow(2).sum(dim=1)
            worst = errors.topk(int((~filled).sum())).indices
            codebook[~filled] = vectors[worst]
    index = nearest_code(vectors, codebook)
    mse = (vectors - codebook[index]).pow(2).mean().item()
    return codebook, mse


def _kmeans_plus_plus(vectors: torch.Tensor, size: int, generator: torch.Generator):
    """k-means++ seeds from a subsample of at most 20000 vectors."""
    sample = vectors[torch.randperm(len(vectors), generator=generator)[:20000]]
    chosen = [sample[torch.randint(len(sample), (1,), generator=generator)].squeeze(0)]
    best = (sample - chosen[0]).pow(2).sum(dim=1)
    for _ in range(size - 1):
        weights = best / best.sum() if best.sum() > 0 else torch.ones_like(best) / len(best)
        pick = torch.multinomial(weights, 1, generator=generator)
        chosen.append(sample[pick].squeeze(0))
        best = torch.minimum(best, (sample - chosen[-1]).pow(2).sum(dim=1))
    return torch.stack(chosen)
