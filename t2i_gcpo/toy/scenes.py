"""The shapes world: GenEval's six prompt categories over coloured shapes on a textured ground.

A scene is a list of objects (a shape class, a colour, a box of `size` pixels at `(x, y)`) drawn
on a 48 x 48 background of 4 x 4 tiles. Each background tile is drawn independently of the
prompt, so most image tokens are uncertain but irrelevant to it; `texture` sets how many: 0 is
a flat ground (one tile everywhere), 1 draws every tile uniformly from TILES (log2 9 = 3.2 bits
a tile). Objects sit anywhere on a 4-pixel lattice (STEP), at three sizes, at least one tile
apart.

Prompts and their metadata follow GenEval's layout and templates (`tag`, `include`: [{class,
count, color?, position?: [relation, index]}], `exclude` for counting, `prompt`), with the six
categories single_object, two_object, counting (1-4), colors, position (left of, right of,
above, below) and color_attr. Some compositions never appear in pretraining (HELD_OUT_*): the
eval split is made of them. Everything is deterministic from a seed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from t2i_gcpo.algos.metrics import patch_coverage
from t2i_gcpo.data.geneval import RELATIONS, TAGS, changes, make_record

IMAGE_SIZE = 48
PATCH = 4
GRID = IMAGE_SIZE // PATCH
STEP = 4
"""Objects' boxes start on this pixel lattice (a patch: anywhere on the token grid)."""
SIZES = (12, 16, 20)
"""Object box sides in pixels; scenes of three or four objects use the first two."""
GAP = PATCH
"""Least distance between two objects' boxes, so that no two objects touch."""
SUPERSAMPLE = 4

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "orange": (245, 145, 25),
    "yellow": (240, 225, 40),
    "green": (40, 190, 60),
    "blue": (40, 90, 235),
    "purple": (165, 60, 215),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
CATEGORIES = TAGS
MAX_COUNT = 4


def _tiles() -> torch.Tensor:
    """The background tiles (9, 3, PATCH, PATCH) in [0, 1]: dark grey patterns, tile 0 flat."""
    y, x = torch.meshgrid(torch.arange(PATCH), torch.arange(PATCH), indexing="ij")
    patterns = [
        torch.full((PATCH, PATCH), 22.0),  # flat
        torch.where((x // 2 + y // 2) % 2 == 0, 22.0, 64.0),  # checker
        torch.where(y % 2 == 0, 70.0, 24.0),  # horizontal stripes
        torch.where(x % 2 == 0, 70.0, 24.0),  # vertical stripes
        torch.where((x + y) % 4 < 2, 68.0, 20.0),  # diagonal
        torch.where((x.clamp(1, 2) == x) & (y.clamp(1, 2) == y), 84.0, 26.0),  # dot
        torch.where((x % 3 == 0) | (y % 3 == 0), 62.0, 30.0),  # frame
        18.0 + 18.0 * y.float(),  # vertical gradient
        torch.where((x == 1) | (y == 2), 58.0, 34.0),  # hash
    ]
    grey = torch.stack(patterns) / 255.0
    tint = torch.tensor([1.0, 1.0, 1.08]).view(1, 3, 1, 1)  # a cool grey, far from every colour
    return (grey[:, None] * tint).clamp(0, 1)


TILES = _tiles()
"""Background tiles: grey levels 18-90 of 255, far from the six saturated colours."""


# ---------------------------------------------------------------------------------------------
# Objects and drawing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneObject:
    """One object: a shape class and a colour in a square box of `size` pixels at (x, y)."""

    shape: str
    color: str
    x: int
    y: int
    size: int

    def __post_init__(self) -> None:
        for field, value, allowed in (("shape", self.shape, SHAPES), ("color", self.color, COLORS)):
            if value not in allowed:
                raise ValueError(
                    f"{field}={value!r} is not in the shapes world; expected one of "
                    f"{tuple(allowed)}"
                )
        if (
            self.size <= 0
            or min(self.x, self.y) < 0
            or max(self.x, self.y) + self.size > IMAGE_SIZE
        ):
            raise ValueError(f"{self} does not fit a {IMAGE_SIZE} x {IMAGE_SIZE} image")

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), x1 and y1 exclusive."""
        return self.x, self.y, self.x + self.size, self.y + self.size

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.size / 2, self.y + self.size / 2


def coverage(shape: str, x: float, y: float, size: float, image_size: int = IMAGE_SIZE):
    """The share (image_size, image_size) of each pixel that a shape in box (x, y, size)
    covers, by SUPERSAMPLE^2 samples per pixel. A box at whole pixels is the cached drawing of
    its shape at (0, 0) moved there (the same numbers: SUPERSAMPLE is a power of 2)."""
    if all(float(t).is_integer() for t in (x, y, size)) and x >= 0 and y >= 0:
        x, y, size = int(x), int(y), int(size)
        if x + size <= image_size and y + size <= image_size:
            local = _box_coverage(shape, size)
            cover = np.zeros((image_size, image_size))
            rows, cols = min(size + 1, image_size - y), min(size + 1, image_size - x)
            cover[y : y + rows, x : x + cols] = local[:rows, :cols]
            return cover
    return _coverage(shape, x, y, size, image_size)


@functools.lru_cache(maxsize=64)
def _box_coverage(shape: str, size: int) -> np.ndarray:
    """The coverage of a box at (0, 0), over its size + 1 pixels (the edge samples), read-only."""
    local = _coverage(shape, 0, 0, size, size + 1)
    local.setflags(write=False)
    return local


def _coverage(shape: str, x: float, y: float, size: float, image_size: int) -> np.ndarray:
    n = image_size * SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / SUPERSAMPLE
    px, py = np.meshgrid(coords, coords)
    u, v = (px - x) / size, (py - y) / size  # the box is [0, 1] x [0, 1]
    inside_box = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    if shape == "square":
        inside = inside_box
    elif shape == "circle":
        inside = (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    elif shape == "triangle":  # upright, apex at the top centre, base along the bottom
        inside = inside_box & (np.abs(u - 0.5) <= v / 2)
    elif shape == "cross":  # a plus sign with arms one third of the box wide
        arm = lambda t: (t >= 1 / 3) & (t <= 2 / 3)  # noqa: E731
        inside = inside_box & (arm(u) | arm(v))
    else:
        raise ValueError(f"shape={shape!r}; expected one of {SHAPES}")
    return inside.reshape(image_size, SUPERSAMPLE, image_size, SUPERSAMPLE).mean(axis=(1, 3))


def background(rng: np.random.Generator, texture: float = 1.0) -> tuple[torch.Tensor, np.ndarray]:
    """A ground of GRID x GRID tiles: each is a tile drawn uniformly from TILES with probability
    `texture`, else the flat tile 0. Returns (image (3, H, W), tile ids (GRID, GRID))."""
    if not 0.0 <= texture <= 1.0:
        raise ValueError(f"texture={texture!r} must lie in [0, 1]")
    drawn = rng.integers(len(TILES), size=(GRID, GRID))
    ids = np.where(rng.random((GRID, GRID)) < texture, drawn, 0)
    tiles = TILES[torch.from_numpy(ids).flatten()]  # (GRID * GRID, 3, P, P)
    image = tiles.view(GRID, GRID, 3, PATCH, PATCH).permute(2, 0, 3, 1, 4)
    return image.reshape(3, IMAGE_SIZE, IMAGE_SIZE).contiguous(), ids


def box_patches(objects: Sequence[SceneObject]) -> torch.Tensor:
    """(GRID, GRID) bool: the patches that some object's box touches (its tokens)."""
    touched = torch.zeros(GRID, GRID, dtype=torch.bool)
    for obj in objects:
        x0, y0 = int(obj.x // PATCH), int(obj.y // PATCH)
        x1, y1 = -int(-(obj.x + obj.size) // PATCH), -int(-(obj.y + obj.size) // PATCH)
        touched[y0:y1, x0:x1] = True
    return touched


def first_patches(masks: torch.Tensor) -> torch.Tensor:
    """masks (K, H, W) bool -> (GRID, GRID) bool: each object's first patch in raster order
    (the first its mask touches), where the policy chooses what the object looks like."""
    touched = patch_coverage(masks, (GRID, GRID)).flatten(1) > 0  # (K, GRID * GRID)
    first = torch.zeros(GRID * GRID, dtype=torch.bool)
    first[touched.float().argmax(1)[touched.any(1)]] = True  # argmax: the first True
    return first.view(GRID, GRID)


@dataclass
class Scene:
    """A drawn scene: image (3, H, W) in [0, 1] and masks (K, H, W) bool, one per object (the
    pixels it covers at least half), with the prompt metadata it was drawn for (if any)."""

    objects: tuple[SceneObject, ...]
    image: torch.Tensor
    masks: torch.Tensor
    metadata: dict | None = None

    @property
    def prompt(self) -> str:
        return self.metadata["prompt"] if self.metadata else ""


def draw(
    objects: Sequence[SceneObject],
    rng: np.random.Generator,
    texture: float = 1.0,
    metadata: dict | None = None,
) -> Scene:
    """Draw `objects` over a background from `rng`. The tiles an object's box touches are
    flat (tile 0), so an object's edge tokens carry its colour and outline, not the texture;
    antialiased edges blend into that flat ground."""
    image, _ = background(rng, texture)
    boxes = box_patches(objects).repeat_interleave(PATCH, 0).repeat_interleave(PATCH, 1)
    image[:, boxes] = TILES[0][:, :1, :1].reshape(3, 1)
    canvas = image.permute(1, 2, 0).numpy().astype(np.float64)
    masks = []
    for obj in objects:
        cover = coverage(obj.shape, obj.x, obj.y, obj.size)[..., None]
        colour = np.array(COLORS[obj.color], dtype=np.float64) / 255.0
        canvas = canvas * (1.0 - cover) + colour * cover
        masks.append(cover[..., 0] >= 0.5)
    masks = np.stack(masks) if masks else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    pixels = torch.from_numpy(canvas).permute(2, 0, 1).float().clamp(0, 1).contiguous()
    return Scene(tuple(objects), pixels, torch.from_numpy(masks), metadata)


# ---------------------------------------------------------------------------------------------
# Prompts: GenEval's layout and templates (t2i_gcpo.data.geneval)
# ---------------------------------------------------------------------------------------------


def check_metadata(metadata: dict) -> None:
    """Raise ValueError unless `metadata` is a GenEval record this world can draw and judge."""
    try:
        tag, include = metadata["tag"], metadata["include"]
        assert tag in CATEGORIES and isinstance(include, list) and include
        for req in include:
            assert req["class"] in SHAPES and 1 <= int(req["count"]) <= MAX_COUNT
            assert req.get("color", "red") in COLORS
            if "position" in req:
                relation, index = req["position"]
                assert relation in RELATIONS and 0 <= index < len(include)
        assert sum(req["count"] for req in include) <= MAX_COUNT
    except (KeyError, TypeError, ValueError, AssertionError) as err:
        raise ValueError(
            "shapes-world metadata must be GenEval's layout over this world's classes "
            f"{SHAPES} and colours {tuple(COLORS)}: {{'tag': one of {CATEGORIES}, 'include': "
            "[{'class', 'count', 'color'?, 'position'?: [relation, index]}], ...}; got "
            f"{metadata!r}"
        ) from err


# ---------------------------------------------------------------------------------------------
# Held-out compositions and the prompt sets
# ---------------------------------------------------------------------------------------------

HELD_OUT_COLOR_SHAPES: frozenset[tuple[str, str]] = frozenset(
    (color, shape)
    for c, color in enumerate(COLORS)
    for s, shape in enumerate(SHAPES)
    if (c + s) % 4 == 0
)
"""Colour-shape pairs never named in a pretraining prompt (one colour a shape or two, every
colour once); drawn there only where a prompt leaves the colour free."""
HELD_OUT_PAIRS: frozenset[frozenset[str]] = frozenset(
    {frozenset({"circle", "cross"}), frozenset({"square", "triangle"})}
)
"""Shape pairs that no two_object pretraining prompt names (nor, under the "pairs" rule of
HELD_OUT_RULES, a prompt of HELD_OUT_PAIR_TAGS' categories)."""
HELD_OUT_PAIR_TAGS: tuple[str, ...] = ("two_object", "position", "color_attr")
"""The categories whose pretraining prompts never name a HELD_OUT_PAIRS pair (position's only
under the "pairs" rule, color_attr's under "pairs" and "arrangements"). With all three, no
pretraining scene draws such a pair, so a policy that learns pretraining's distribution learns
that its shapes never meet (docs/results.md, section 4, "Held-out pairs")."""
HELD_OUT_COUNTS: frozenset[tuple[int, str]] = frozenset(
    (count, shape)
    for s, shape in enumerate(SHAPES)
    for count in (1, 2, 3, 4)
    if (count + s) % 4 == 0
)
"""Counting prompts (count, class) never seen in pretraining: one count for each class."""
HELD_OUT_SINGLES: frozenset[str] = frozenset({"triangle", "cross"})
"""Classes never prompted alone ("a photo of a triangle") in pretraining, only in other
categories."""
HELD_OUT_ARRANGEMENTS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("circle", "triangle", "horizontal"),
        ("square", "cross", "horizontal"),
        ("triangle", "cross", "horizontal"),
        ("circle", "square", "vertical"),
        ("cross", "circle", "vertical"),
        ("triangle", "square", "vertical"),
    }
)
"""(first, second, axis): the first shape left of (horizontal) or above (vertical) the second,
one arrangement a shape pair, held out of position prompts in either phrasing ("a circle left
of a triangle", "a triangle right of a circle"), whose other three arrangements they draw."""
HELD_OUT_COLOR_ATTR_SUM = 4
"""The color_attr of the "per_category" and "unnamed_colors" rules: pairs of coloured objects
whose class and colour indices (SHAPES, COLORS) sum to a multiple of this are held out, in
either order."""
HELD_OUT_RULES = ("arrangements", "pairs", "per_category", "unnamed_colors")
HELD_OUT_RULE = "unnamed_colors"
"""Which compositions is_held_out holds out. "unnamed_colors", the split of the shipped assets
since 2026-12-07: every HELD_OUT_* composition in every category's prompts, except that
position prompts draw the HELD_OUT_PAIRS in every arrangement but HELD_OUT_ARRANGEMENTS'
(position's held-out prompts), and that color_attr's records naming a HELD_OUT_COLOR_SHAPES
pair are in neither split while its others are split by HELD_OUT_COLOR_ATTR_SUM (in either
order, the held-out pairs included): no pretraining prompt names a held-out colour-shape, so
colors stays a held-out test, and color_attr's held-out prompts name colour-shapes that
pretraining names, in pairings it never shows. Three variants measured against it
(benchmarks/policy_stage.py --held-out-rule; docs/results.md, section 4): "arrangements", the
split shipped from 2026-12-06 to 2026-12-07, the same but for color_attr, which holds out every
record naming a held-out colour-shape or pair; "pairs", the split shipped before, holds the
pairs out of the prompts of HELD_OUT_PAIR_TAGS' categories (by default all three two-shape
ones, so that no pretraining scene draws them together); "per_category", each category holding
out only its own compositions (two_object the pairs, colors the colour-shapes, position the
arrangements, color_attr a quarter of its coloured pairs by HELD_OUT_COLOR_ATTR_SUM), so that
other categories' prompts name their parts."""


def arrangement(metadata: dict) -> tuple[str, str, str]:
    """A position record's (first, second, axis): which shape is left of (axis "horizontal")
    or above ("vertical") the other, the same for "A left of B" and "B right of A"."""
    anchor, placed = metadata["include"]
    relation = placed["position"][0]
    axis = "horizontal" if relation in ("left of", "right of") else "vertical"
    pair = (placed["class"], anchor["class"])
    return (*(pair if relation in ("left of", "above") else pair[::-1]), axis)


def split_of(metadata: dict) -> str | None:
    """The split a record belongs to under HELD_OUT_RULE: "eval" when it names a composition
    that pretraining never shows, "train" when it names none, None when it is in neither (only
    under "unnamed_colors")."""
    if HELD_OUT_RULE not in HELD_OUT_RULES:
        raise ValueError(f"HELD_OUT_RULE={HELD_OUT_RULE!r}; expected one of {HELD_OUT_RULES}")
    include, tag = metadata["include"], metadata["tag"]
    shapes = [req["class"] for req in include]
    colored = [(req["color"], req["class"]) for req in include if "color" in req]
    names_held_out_color = any(pair in HELD_OUT_COLOR_SHAPES for pair in colored)
    if tag == "counting":
        held_out = (include[0]["count"], shapes[0]) in HELD_OUT_COUNTS
    elif tag == "single_object":
        held_out = shapes[0] in HELD_OUT_SINGLES
    elif tag == "color_attr" and HELD_OUT_RULE in ("per_category", "unnamed_colors"):
        if HELD_OUT_RULE == "unnamed_colors" and names_held_out_color:
            return None
        indices = sum(SHAPES.index(s) + list(COLORS).index(c) for c, s in colored)
        held_out = indices % HELD_OUT_COLOR_ATTR_SUM == 0
    elif names_held_out_color:
        held_out = True
    elif tag == "position" and HELD_OUT_RULE != "pairs":
        held_out = arrangement(metadata) in HELD_OUT_ARRANGEMENTS
    else:
        pair_tags = ("two_object",) if HELD_OUT_RULE == "per_category" else HELD_OUT_PAIR_TAGS
        held_out = tag in pair_tags and len(shapes) == 2 and frozenset(shapes) in HELD_OUT_PAIRS
    return "eval" if held_out else "train"


def is_held_out(metadata: dict) -> bool:
    """True when a record names a composition that pretraining never shows (under
    HELD_OUT_RULE)."""
    return split_of(metadata) == "eval"


def all_metadata(tag: str) -> list[dict]:
    """Every distinct record of a category, in a fixed order."""
    records = []
    if tag == "single_object":
        records = [[{"class": s, "count": 1}] for s in SHAPES]
    elif tag == "two_object":
        records = [
            [{"class": a, "count": 1}, {"class": b, "count": 1}]
            for a in SHAPES
            for b in SHAPES
            if a != b
        ]
    elif tag == "counting":
        records = [[{"class": s, "count": n}] for s in SHAPES for n in range(1, MAX_COUNT + 1)]
    elif tag == "colors":
        records = [[{"class": s, "count": 1, "color": c}] for s in SHAPES for c in COLORS]
    elif tag == "position":
        records = [
            [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [r, 0]}]
            for a in SHAPES
            for b in SHAPES
            if a != b
            for r in RELATIONS
        ]
    elif tag == "color_attr":
        records = [
            [{"class": a, "count": 1, "color": ca}, {"class": b, "count": 1, "color": cb}]
            for a in SHAPES
            for b in SHAPES
            if a != b
            for ca in COLORS
            for cb in COLORS
            if ca != cb
        ]
    else:
        raise ValueError(f"tag={tag!r}; expected one of {CATEGORIES}")
    return [make_record(tag, include) for include in records]


SPLITS = ("train", "eval", "any")


def split_metadata(split: str) -> list[dict]:
    """Every record of the "train" split (no held-out composition), the "eval" split (only
    held-out compositions) or every record ("any", those in neither split included), all six
    categories."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; expected one of {SPLITS}")
    records = [m for tag in CATEGORIES for m in all_metadata(tag)]
    if split == "any":
        return records
    return [m for m in records if split_of(m) == split]


# ---------------------------------------------------------------------------------------------
# Layouts: objects placed to satisfy a record
# ---------------------------------------------------------------------------------------------


def relation_holds(a: SceneObject, b: SceneObject, relation: str, threshold: float = 0.1) -> bool:
    """GenEval's relative_position rule: is `a` <relation> `b`, judged from their boxes?"""
    return relation in relations(a.box, b.box, threshold)


def relations(box_a, box_b, threshold: float = 0.1) -> set[str]:
    """GenEval's relations of box A to box B ((x0, y0, x1, y1) each): the centre offset, less
    `threshold` times their summed sides on each axis, pointing mostly left, right, up or down."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = box_a, box_b
    offset = np.array([(ax0 + ax1 - bx0 - bx1) / 2, (ay0 + ay1 - by0 - by1) / 2])
    dims = np.array([ax1 - ax0 + bx1 - bx0, ay1 - ay0 + by1 - by0])
    revised = np.maximum(np.abs(offset) - threshold * dims, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    found = set()
    if dx < -0.5:
        found.add("left of")
    if dx > 0.5:
        found.add("right of")
    if dy < -0.5:
        found.add("above")
    if dy > 0.5:
        found.add("below")
    return found


def _place(
    specs: list[tuple[str, str]], rng: np.random.Generator, relation: str | None
) -> tuple[SceneObject, ...] | None:
    """Boxes for (shape, colour) specs, apart by GAP; with `relation`, object 1 stands in that
    relation to object 0, clearly (GenEval's rule with a stricter threshold). None if the
    random draw failed (the caller draws again)."""
    sizes = SIZES if len(specs) <= 2 else SIZES[:2]
    placed: list[SceneObject] = []
    for shape, color in specs:
        for _ in range(50):
            size = int(sizes[rng.integers(len(sizes))])
            slots = (IMAGE_SIZE - size) // STEP + 1
            x, y = (int(v) * STEP for v in rng.integers(slots, size=2))
            obj = SceneObject(shape, color, x, y, size)
            apart = all(_apart(obj, other) for other in placed)
            if apart and (relation is None or len(placed) != 1 or _clear(obj, placed[0], relation)):
                placed.append(obj)
                break
        else:
            return None
    return tuple(placed)


def _apart(a: SceneObject, b: SceneObject) -> bool:
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.box, b.box
    return ax1 + GAP <= bx0 or bx1 + GAP <= ax0 or ay1 + GAP <= by0 or by1 + GAP <= ay0


def _clear(a: SceneObject, b: SceneObject, relation: str) -> bool:
    """a stands in `relation` to b, and in that one only, by GenEval's margin and by twice it."""
    return relations(a.box, b.box, 0.1) == relations(a.box, b.box, 0.2) == {relation}


def layout(metadata: dict, rng: np.random.Generator) -> tuple:
    """Objects that satisfy a record: its classes, counts, colours and relation; the colours it
    leaves free (any of the six), every size and every place drawn from `rng`."""
    specs, colors = [], list(COLORS)
    for req in metadata["include"]:
        for _ in range(req["count"]):
            color = req.get("color") or colors[rng.integers(len(colors))]
            specs.append((req["class"], color))
    relation = None
    if metadata["tag"] == "position":
        relation = metadata["include"][1]["position"][0]
    for _ in range(200):
        placed = _place(specs, rng, relation)
        if placed is not None:
            return placed
    raise RuntimeError(f"could not lay out {metadata['prompt']!r} in 200 draws")


def sample_scene(metadata: dict, rng: np.random.Generator, texture: float = 1.0) -> Scene:
    """A scene drawn for a record: its layout over a fresh background."""
    return draw(layout(metadata, rng), rng, texture, metadata)


def random_scenes(
    n: int,
    seed: int,
    split: str = "train",
    texture: float = 1.0,
    categories: Sequence[str] = CATEGORIES,
    weights: Sequence[float] | None = None,
) -> list[Scene]:
    """n scenes, deterministic from `seed`: a category (uniformly, or in proportion to
    `weights`), then one of its records of `split` uniformly, then its layout and background."""
    rng = np.random.default_rng(seed)
    pools = {tag: [m for m in split_metadata(split) if m["tag"] == tag] for tag in categories}
    odds = None if weights is None else np.asarray(weights, dtype=float) / sum(weights)
    scenes = []
    for _ in range(n):
        pool = pools[categories[rng.choice(len(categories), p=odds)]]
        scenes.append(sample_scene(pool[rng.integers(len(pool))], rng, texture))
    return scenes


# ---------------------------------------------------------------------------------------------
# Hard negatives: one thing the prompt says, changed
# ---------------------------------------------------------------------------------------------


def hard_negative_changes(metadata: dict) -> list[tuple[str, dict]]:
    """Every (kind, record) that differs from `metadata` in one thing it names, within this
    world's classes and colours (see data.geneval.changes)."""
    return changes(metadata, SHAPES, list(COLORS), MAX_COUNT)


def hard_negatives(metadata: dict) -> list[dict]:
    """The records of `hard_negative_changes`."""
    return [record for _, record in hard_negative_changes(metadata)]


def replace_object(objects: tuple, index: int, **change) -> tuple[SceneObject, ...]:
    """`objects` with one object's fields changed."""
    changed = list(objects)
    changed[index] = dataclasses.replace(objects[index], **change)
    return tuple(changed)
