"""The shapes world: procedural scenes of one or two coloured shapes, with captions and masks.

Everything is deterministic from a seed. A scene is a list of objects (colour, shape, position);
each object sits in its own quadrant and covers at most a quarter of the image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 220, 40),
    "purple": (160, 60, 210),
    "cyan": (40, 210, 220),
}
BACKGROUND: tuple[int, int, int] = (20, 20, 20)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
POSITIONS: dict[str, tuple[int, int]] = {  # name -> (row, column) of the quadrant
    "top left": (0, 0),
    "top right": (0, 1),
    "bottom left": (1, 0),
    "bottom right": (1, 1),
}
IMAGE_SIZE = 32
SUPERSAMPLE = 4
SIZE_RANGE = (0.375, 0.375)  # object side as a fraction of the image side (min, max)
JITTER = 0.0  # largest centre offset, as a fraction of the image side


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene: a colour, a shape and a quadrant."""

    color: str
    shape: str
    position: str

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("color", self.color, COLORS),
            ("shape", self.shape, SHAPES),
            ("position", self.position, POSITIONS),
        ):
            if value not in allowed:
                raise ValueError(
                    f"{field}={value!r} is not in the shapes world; expected one of "
                    f"{tuple(allowed)}"
                )

    @property
    def phrase(self) -> str:
        """'a red circle at the top left'."""
        return f"a {self.color} {self.shape} at the {self.position}"

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


# Compositions never seen in pretraining: one in six colour-shape-position triples, chosen so
# that every colour-shape pair is still seen at three or more positions.
HELD_OUT: frozenset[SceneObject] = frozenset(
    SceneObject(color, shape, position)
    for c, color in enumerate(COLORS)
    for s, shape in enumerate(SHAPES)
    for p, position in enumerate(POSITIONS)
    if (c + s + p) % 6 == 0
)


@dataclass
class Scene:
    """A rendered scene: image (3, H, W) float in [0, 1], masks (K, H, W) bool, one per object."""

    objects: tuple[SceneObject, ...]
    image: torch.Tensor
    masks: torch.Tensor

    @property
    def caption(self) -> str:
        return caption(self.objects)

    @property
    def metadata(self) -> dict:
        return scene_metadata(self.objects)


def caption(objects: Sequence[SceneObject]) -> str:
    """The template caption of a list of objects, joined by 'and'."""
    return " and ".join(obj.phrase for obj in objects)


def scene_metadata(objects: Sequence[SceneObject]) -> dict:
    """The metadata stored with a prompt: its tag and objects."""
    tag = "single_object" if len(objects) == 1 else "two_object"
    return {"tag": tag, "objects": [obj.as_dict() for obj in objects]}


def objects_from_metadata(metadata: dict) -> tuple[SceneObject, ...]:
    """Inverse of scene_metadata; raises ValueError on a malformed record."""
    try:
        return tuple(SceneObject(**obj) for obj in metadata["objects"])
    except (KeyError, TypeError) as err:
        raise ValueError(
            "shapes-world metadata must look like {'objects': [{'color': ..., 'shape': ..., "
            f"'position': ...}}]}}; got {metadata!r}"
        ) from err


def _coverage(shape: str, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """Fraction (size, size) of each pixel covered by the shape, by supersampling."""
    n = size * SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / SUPERSAMPLE
    x, y = np.meshgrid(coords, coords)
    half = side / 2.0
    if shape == "square":
        inside = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    elif shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= half**2
    else:  # an upright isosceles triangle filling the object's square box
        top = cy - half
        inside = (y >= top) & (y <= cy + half) & (np.abs(x - cx) <= (y - top) / 2.0)
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def render(objects: Sequence[SceneObject], seed: int = 0, image_size: int = IMAGE_SIZE) -> Scene:
    """Draw `objects` (distinct quadrants) with a size and offset drawn from `seed`."""
    positions = [obj.position for obj in objects]
    if not objects or len(set(positions)) != len(positions):
        raise ValueError(
            f"a scene needs one or more objects in distinct quadrants; got {positions}"
        )
    rng = np.random.default_rng(seed)
    canvas = np.broadcast_to(np.array(BACKGROUND, dtype=np.float64), (image_size, image_size, 3))
    canvas = canvas.copy()
    masks = []
    quadrant = image_size / 2.0
    for obj in objects:
        row, col = POSITIONS[obj.position]
        side = rng.uniform(*SIZE_RANGE) * image_size
        dx, dy = rng.uniform(-JITTER, JITTER, size=2) * image_size
        cx, cy = (col + 0.5) * quadrant + dx, (row + 0.5) * quadrant + dy
        cover = _coverage(obj.shape, cx, cy, side, image_size)[..., None]
        canvas = canvas * (1.0 - cover) + np.array(COLORS[obj.color], dtype=np.float64) * cover
        masks.append(cover[..., 0] >= 0.5)
    image = torch.from_numpy(canvas / 255.0).permute(2, 0, 1).float().contiguous()
    return Scene(tuple(objects), image, torch.from_numpy(np.stack(masks)))


def all_objects() -> list[SceneObject]:
    """Every colour-shape-position triple, in a fixed order."""
    return [SceneObject(c, s, p) for c in COLORS for s in SHAPES for p in POSITIONS]


def random_objects(rng: np.random.Generator, n_objects: int, split: str) -> tuple[SceneObject, ...]:
    """n_objects in distinct quadrants. split: "train" (no held-out triple), "eval" (at least one
    held-out triple) or "any"."""
    if split not in ("train", "eval", "any"):
        raise ValueError(f"split={split!r}; expected 'train', 'eval' or 'any'")
    if n_objects not in (1, 2):
        raise ValueError(f"n_objects={n_objects}; the shapes world has scenes of 1 or 2 objects")
    while True:
        quadrants = rng.choice(len(POSITIONS), size=n_objects, replace=False)
        objects = tuple(
            SceneObject(
                list(COLORS)[rng.integers(len(COLORS))],
                SHAPES[rng.integers(len(SHAPES))],
                list(POSITIONS)[q],
            )
            for q in sorted(quadrants)
        )
        held = [obj in HELD_OUT for obj in objects]
        if (
            split == "any"
            or (split == "train" and not any(held))
            or (split == "eval" and any(held))
        ):
            return objects


def contrastive_objects(
    objects: Sequence[SceneObject], rng: np.random.Generator
) -> tuple[tuple[SceneObject, ...], str]:
    """A hard negative of `objects`: one object's colour, shape or position changed (or, for two
    objects, their colours swapped). Returns the new objects and what changed."""
    objects = list(objects)
    kinds = ["color", "shape", "position"] + (["swap_colors"] if len(objects) == 2 else [])
    kind = kinds[rng.integers(len(kinds))]
    if kind == "swap_colors" and objects[0].color == objects[1].color:
        kind = "color"
    i = int(rng.integers(len(objects)))
    if kind == "swap_colors":
        a, b = objects
        return (dataclasses.replace(a, color=b.color), dataclasses.replace(b, color=a.color)), kind
    if kind == "position":
        taken = {obj.position for obj in objects}
        choices = [p for p in POSITIONS if p not in taken]
    else:
        current = getattr(objects[i], kind)
        choices = [v for v in (COLORS if kind == "color" else SHAPES) if v != current]
    objects[i] = dataclasses.replace(objects[i], **{kind: choices[rng.integers(len(choices))]})
    return tuple(objects), kind


def random_scenes(n: int, seed: int, split: str = "train", two_object_share: float = 0.5):
    """n scenes, deterministic from `seed`, each with 1 or 2 objects drawn from `split`."""
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(n):
        n_objects = 2 if rng.random() < two_object_share else 1
        objects = random_objects(rng, n_objects, split)
        scenes.append(render(objects, seed=int(rng.integers(2**31))))
    return scenes


def prompt_splits(seed: int = 0, n_train_pairs: int = 196, n_eval_pairs: int = 52):
    """(train, eval) lists of (objects, negative objects) for the shapes prompt sets.

    eval: every held-out single object and `n_eval_pairs` two-object scenes with at least one
    held-out triple. train: every seen single object and `n_train_pairs` two-object scenes
    (any triple) whose captions are not in eval.
    """
    rng = np.random.default_rng(seed)

    def unique_pairs(n, split, exclude):
        chosen: dict[str, tuple[SceneObject, ...]] = {}
        while len(chosen) < n:
            objects = random_objects(rng, 2, split)
            if caption(objects) not in exclude:
                chosen.setdefault(caption(objects), objects)
        return list(chosen.values())

    singles = [(obj,) for obj in all_objects()]
    eval_sets = [s for s in singles if s[0] in HELD_OUT] + unique_pairs(n_eval_pairs, "eval", set())
    eval_captions = {caption(s) for s in eval_sets}
    train_sets = [s for s in singles if s[0] not in HELD_OUT]
    train_sets += unique_pairs(n_train_pairs, "any", eval_captions)
    with_negatives = lambda sets: [(s, contrastive_objects(s, rng)[0]) for s in sets]  # noqa: E731
    return with_negatives(train_sets), with_negatives(eval_sets)


def all_contrastive(objects: Sequence[SceneObject]) -> list[tuple[SceneObject, ...]]:
    """Every hard negative of `objects`: each single change of one object's colour, shape or
    (free) position, and for two objects of different colours, the colours swapped."""
    objects = tuple(objects)
    taken = {obj.position for obj in objects}
    negatives = []
    for i, obj in enumerate(objects):
        changes = [("color", v) for v in COLORS if v != obj.color]
        changes += [("shape", v) for v in SHAPES if v != obj.shape]
        changes += [("position", v) for v in POSITIONS if v not in taken]
        for field, value in changes:
            changed = list(objects)
            changed[i] = dataclasses.replace(obj, **{field: value})
            negatives.append(tuple(changed))
    if len(objects) == 2 and objects[0].color != objects[1].color:
        a, b = objects
        negatives.append(
            (dataclasses.replace(a, color=b.color), dataclasses.replace(b, color=a.color))
        )
    return negatives
