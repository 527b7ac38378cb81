"""The wire format of remote rewards: no pickle, sizes checked before anything is decoded.

A scoring request is one safetensors document: a tensor "images" of shape (N, 3, H, W), either
float32 in [0, 1] (exactly what an in-process reward would see) or uint8 (the images rounded to
8 bits, as a PNG holds them: 4 times smaller), and, in the document's string metadata,
"prompts" (a JSON list of N strings) and "metadata" (a JSON list of N objects). A response is
JSON: {"scores": [N numbers]} or {"error": "..."}. `decode_request` reads the 8-byte header
length and the JSON header first and checks every size against the limits, so an oversized or
malformed body is refused before any tensor is built.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import torch
from safetensors.torch import save

MAX_HEADER_BYTES = 1 << 20
PRECISIONS = {"float32": ("F32", torch.float32, 4), "uint8": ("U8", torch.uint8, 1)}
"""Wire precision -> (safetensors dtype, torch dtype, bytes a value)."""


class WireError(ValueError):
    """A request that does not follow the wire format or exceeds a limit; `status` is the HTTP
    status a server answers it with (400 malformed, 413 too large)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What a server accepts in one request."""

    max_images: int = 256
    max_side: int = 1024
    max_body_bytes: int = 512 << 20


def encode_request(
    images: torch.Tensor, prompts: list[str], metadata: list[dict], precision: str = "float32"
) -> bytes:
    """images (N, 3, H, W) in [0, 1], N prompts, N metadata dicts -> request bytes."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; expected one of {tuple(PRECISIONS)}")
    pixels = images.detach().float().clamp(0, 1).cpu()
    if precision == "uint8":
        pixels = (pixels * 255).round().to(torch.uint8)
    header = {"prompts": json.dumps(list(prompts)), "metadata": json.dumps(list(metadata))}
    return save({"images": pixels.contiguous()}, metadata=header)


def decode_request(body: bytes, limits: Limits) -> tuple[torch.Tensor, list[str], list[dict]]:
    """Request bytes -> (images (N, 3, H, W) float in [0, 1], prompts, metadata); WireError on
    anything malformed or over the limits, checked before the tensor is decoded."""
    if len(body) > limits.max_body_bytes:
        raise WireError(f"body of {len(body)} bytes > {limits.max_body_bytes}", 413)
    if len(body) < 8:
        raise WireError("body too short for a safetensors header")
    (header_size,) = struct.unpack("<Q", body[:8])
    if header_size > min(MAX_HEADER_BYTES, len(body) - 8):
        raise WireError(f"header of {header_size} bytes does not fit the body")
    try:
        header = json.loads(body[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError(f"header is not JSON ({err})") from None
    entry = header.get("images") if isinstance(header, dict) else None
    kinds = {wire: (dtype, size) for wire, dtype, size in PRECISIONS.values()}
    if not isinstance(entry, dict) or entry.get("dtype") not in kinds:
        raise WireError('expected one tensor "images" of dtype F32 or U8')
    dtype, itemsize = kinds[entry["dtype"]]
    shape, (start, end) = entry.get("shape"), entry.get("data_offsets", (0, -1))
    if not (isinstance(shape, list) and len(shape) == 4 and shape[1] == 3):
        raise WireError(f"images must be (N, 3, H, W); got shape {shape}")
    n, _, height, width = shape
    if not 1 <= n <= limits.max_images:
        raise WireError(f"{n} images; at most {limits.max_images} a request", 413)
    if not (1 <= height <= limits.max_side and 1 <= width <= limits.max_side):
        raise WireError(f"images of {height} x {width}; at most {limits.max_side} a side", 413)
    if end - start != n * 3 * height * width * itemsize or 8 + header_size + end > len(body):
        raise WireError("the images' byte range does not match their shape")
    prompts, metadata = _texts(header.get("__metadata__") or {}, n)
    offset = 8 + header_size + start
    pixels = torch.frombuffer(bytearray(body[offset : offset + end - start]), dtype=dtype)
    images = pixels.view(n, 3, height, width)
    if dtype == torch.uint8:
        return images.float() / 255.0, prompts, metadata
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise WireError("float images must be finite and in [0, 1]")
    return images.clone(), prompts, metadata


def _texts(strings: dict, n: int) -> tuple[list[str], list[dict]]:
    """The prompts and metadata of a request's string metadata, checked."""
    try:
        prompts = json.loads(strings.get("prompts", "null"))
        metadata = json.loads(strings.get("metadata", "null"))
    except (TypeError, json.JSONDecodeError) as err:
        raise WireError(f"prompts / metadata are not JSON ({err})") from None
    if not (
        isinstance(prompts, list) and len(prompts) == n and all(isinstance(p, str) for p in prompts)
    ):
        raise WireError(f"prompts must be a JSON list of {n} strings")
    if metadata is None:
        metadata = [{} for _ in range(n)]
    if not (
        isinstance(metadata, list)
        and len(metadata) == n
        and all(isinstance(m, dict) for m in metadata)
    ):
        raise WireError(f"metadata must be a JSON list of {n} objects")
    return prompts, metadata
