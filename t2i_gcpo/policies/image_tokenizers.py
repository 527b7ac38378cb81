"""Image tokenizers a policy can decode its tokens with, instead of its model's own VQ.

An image tokenizer is a torch module with `encode(images (N, 3, H, W) in [0, 1]) -> ids (N, T)`,
`decode(ids) -> images`, `codebook_size`, `grid`, `image_size`, `save_pretrained(folder)` and a
class method `from_pretrained(folder)`; its folder's config.json names its `type`. Types are
found in IMAGE_TOKENIZERS: registered in code, or published under the entry-point group
"t2i_gcpo.image_tokenizers" (the shapes world publishes its local "patch_vq" this way).
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from reward_models.registry import PluginRegistry

IMAGE_TOKENIZERS = PluginRegistry("image tokenizer", "t2i_gcpo.image_tokenizers")
"""Image tokenizer `type` -> its class."""
FOLDER = "image_tokenizer"
"""The sub-folder of a saved policy that holds its image tokenizer."""


def load_image_tokenizer(folder: str | Path) -> nn.Module:
    """The image tokenizer saved in `folder` (its config.json's `type` picks the class)."""
    config_file = Path(folder) / "config.json"
    kind = json.loads(config_file.read_text(encoding="utf-8")).get("type")
    cls = IMAGE_TOKENIZERS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(
            f"{config_file}: image tokenizer type {kind!r} is not installed; known types: "
            f"{IMAGE_TOKENIZERS.names()}"
        )
    return cls.from_pretrained(folder)
