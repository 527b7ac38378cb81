"""Ground truth for the shapes world, read the way GenEval reads a detector's output.

Detection: every pixel that is a blend of the ground and one of the six colours, at least
half the colour, takes that colour;
the 8-connected regions of one colour of at least MIN_AREA pixels are the objects, each with
its colour, its box, its mask and its class, read off its silhouette (the nearest prototype of
fill, corner, top, bottom and middle-band features, measured on drawn shapes; a silhouette far
from every prototype is no object). Objects of a class are ranked by area, as GenEval ranks
detections by confidence.

Judgement (GenEval's evaluate_images.py rules): for each `include` requirement, the first
`count` objects of its class must exist; with a `color`, at least `count` of them must have it;
with a `position` [relation, i], every one of them must stand in that relation to every object
matched by requirement i (centre offsets with a margin of 0.1 of the summed box sides); an
`exclude` requirement fails when `count` or more objects of its class are found. The score of a
set of images is its accuracy per category and their mean (the GenEval score).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from t2i_gcpo.toy.scenes import (
    COLORS,
    IMAGE_SIZE,
    PATCH,
    SHAPES,
    SIZES,
    STEP,
    TILES,
    SceneObject,
    check_metadata,
    coverage,
    draw,
    relations,
)

PALETTE = torch.tensor(list(COLORS.values()), dtype=torch.float32) / 255.0
GROUND = TILES[0].mean(dim=(1, 2))
"""The flat tile's colour: the ground under and around every object."""
COLOR_TOLERANCE = 0.12
"""Largest RGB distance (in [0, 1] units) of a pixel from the blend of ground and colour."""
MIN_AREA = 24
"""Fewest pixels of an object (the smallest drawn triangle has about 72)."""
MAX_SHAPE_DISTANCE = 4.0
"""A silhouette farther than this (in prototype-spread units) from every class is no object."""


@dataclass
class Detection:
    """One object found in an image: class (None when unrecognised), colour, box, mask."""

    shape: str | None
    color: str
    box: tuple[int, int, int, int]
    mask: torch.Tensor
    area: int


@dataclass
class Judgement:
    """The verdict on one image, with what was found and why it is wrong."""

    correct: bool
    found: list[Detection]
    matched: list[Detection] = field(default_factory=list)
    reason: str = ""
    share: float = 0.0
    """The share of the prompt's requirements (includes and excludes) that hold."""

    @property
    def masks(self) -> torch.Tensor:
        """(K, H, W) bool: the objects matched to the prompt's requirements."""
        if not self.matched:
            return torch.zeros(0, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
        return torch.stack([d.mask for d in self.matched])


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------


def color_labels(images: torch.Tensor) -> torch.Tensor:
    """images (N, 3, H, W) in [0, 1] -> (N, H, W) long: 1 + the colour's index, 0 for none.

    Each pixel is read as a blend p = g + a (c - g) of the flat ground g and a colour c (an
    object's antialiased edge is one): it takes the colour whose blend fits it within
    COLOR_TOLERANCE with a share a >= 1/2, so a mask follows the drawn coverage."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W); got shape {tuple(images.shape)}")
    pixels = images.detach().float().cpu().permute(0, 2, 3, 1)[..., None, :]  # (N, H, W, 1, 3)
    ground = GROUND.view(1, 1, 1, 1, 3)
    direction = (PALETTE - GROUND).view(1, 1, 1, -1, 3)
    share = ((pixels - ground) * direction).sum(-1) / (direction * direction).sum(-1)
    share = share.clamp(0.0, 1.0)
    residual = (pixels - ground - share[..., None] * direction).norm(dim=-1)
    fits = (share >= 0.5) & (residual <= COLOR_TOLERANCE)
    best = residual.masked_fill(~fits, float("inf")).argmin(dim=-1)
    return torch.where(fits.any(dim=-1), best + 1, torch.zeros_like(best))


def components(labels: torch.Tensor) -> torch.Tensor:
    """labels (N, H, W) -> (N, H, W) long: one id per 8-connected region of one label, 0 where
    the label is 0 (by propagating the largest pixel index within each region)."""
    n, height, width = labels.shape
    index = torch.arange(1, height * width + 1, dtype=torch.float32).view(1, height, width)
    ids = torch.zeros(n, height, width)
    for label in labels.unique().tolist():
        if label == 0:
            continue
        mask = (labels == label).float()
        current = index * mask
        while True:
            grown = F.max_pool2d(current[:, None], 3, stride=1, padding=1)[:, 0] * mask
            if torch.equal(grown, current):
                break
            current = grown
        ids += current
    return ids.long()


def silhouette_features(mask: torch.Tensor) -> torch.Tensor:
    """mask (H, W) bool of one object -> (fill, corner fill, top third, bottom third, middle
    bands, aspect) of its box."""
    rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].float()
    h, w = box.shape
    ch, cw, th, tw = max(1, round(0.2 * h)), max(1, round(0.2 * w)), max(1, h // 3), max(1, w // 3)
    corners = torch.stack([box[:ch, :cw].mean(), box[:ch, -cw:].mean(),
                           box[-ch:, :cw].mean(), box[-ch:, -cw:].mean()]).mean()  # fmt: skip
    middle = torch.cat([box[th : h - th].flatten(), box[:, tw : w - tw].flatten()]).mean()
    return torch.stack(
        [box.mean(), corners, box[:th].mean(), box[-th:].mean(), middle, torch.tensor(w / h)]
    )


@cache
def _prototypes() -> tuple[torch.Tensor, torch.Tensor]:
    """(mean features (S, F), spread (F,)) of each class, over drawn sizes and offsets."""
    per_shape = []
    for shape in SHAPES:
        rows = []
        for size in SIZES:
            for offset in range(0, 4, STEP):
                cover = coverage(shape, 8 + offset, 8 + offset, size)
                rows.append(silhouette_features(torch.from_numpy(cover >= 0.5)))
        per_shape.append(torch.stack(rows))
    means = torch.stack([rows.mean(dim=0) for rows in per_shape])
    spread = torch.cat(per_shape).std(dim=0).clamp(min=0.15)
    return means, spread


def classify_shape(mask: torch.Tensor) -> str | None:
    """mask (H, W) bool of one object -> the nearest prototype class, or None when it is far
    from all of them."""
    means, spread = _prototypes()
    distance = ((silhouette_features(mask) - means) / spread).norm(dim=1)
    best = int(distance.argmin())
    return SHAPES[best] if distance[best] <= MAX_SHAPE_DISTANCE else None


def detect(images: torch.Tensor) -> list[list[Detection]]:
    """images (N, 3, H, W) in [0, 1] -> per image its objects, largest first."""
    labels = color_labels(images)
    ids = components(labels)
    colors = list(COLORS)
    found = []
    for image_labels, image_ids in zip(labels, ids, strict=True):
        objects = []
        for region in image_ids.unique().tolist():
            if region == 0:
                continue
            mask = image_ids == region
            area = int(mask.sum())
            if area < MIN_AREA:
                continue
            ys, xs = mask.nonzero(as_tuple=True)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            color = colors[int(image_labels[ys[0], xs[0]]) - 1]
            objects.append(Detection(classify_shape(mask), color, box, mask, area))
        found.append(sorted(objects, key=lambda d: -d.area))
    return found


# ---------------------------------------------------------------------------------------------
# Judgement
# ---------------------------------------------------------------------------------------------


def objects_by_class(found: list[Detection]) -> dict[str, list[Detection]]:
    """Detections -> {class: its detections, in the order found}; unrecognised ones left out."""
    by_class: dict[str, list[Detection]] = {}
    for detection in found:
        if detection.shape is not None:
            by_class.setdefault(detection.shape, []).append(detection)
    return by_class


def chosen_objects(by_class: dict[str, list[Detection]], metadata: dict) -> list[list[Detection]]:
    """Each include requirement's detections as GenEval picks them: the first `count` of its
    class in `by_class` (objects_by_class), fewer when fewer were found."""
    return [by_class.get(req["class"], [])[: int(req["count"])] for req in metadata["include"]]


def judge_objects(found: list[Detection], metadata: dict) -> Judgement:
    """GenEval's rules (see the module docstring) on one image's detections."""
    check_metadata(metadata)
    by_class = objects_by_class(found)
    correct, reasons, groups, matched = True, [], [], []
    picks = chosen_objects(by_class, metadata)
    for req, chosen in zip(metadata["include"], picks, strict=True):
        name, count = req["class"], int(req["count"])
        ok = len(chosen) >= count
        if not ok:
            reasons.append(f"expected {name} >= {count}, found {len(chosen)}")
        elif "color" in req and [d.color for d in chosen].count(req["color"]) < count:
            ok = False
            reasons.append(
                f"expected {count} {req['color']} {name}, found {[d.color for d in chosen]}"
            )
        elif "position" in req:
            relation, target = req["position"]
            targets = groups[target]
            if targets is None:
                ok = False
                reasons.append(f"no target for {name} to be {relation}")
            elif not all(relation in relations(d.box, t.box) for d in chosen for t in targets):
                ok = False
                reasons.append(f"expected {name} {relation} target")
        correct &= ok
        groups.append(chosen if ok else None)
        matched.extend(chosen)
    for req in metadata.get("exclude", []):
        if len(by_class.get(req["class"], [])) >= req["count"]:
            correct = False
            reasons.append(f"expected {req['class']} < {req['count']}")
    total = len(metadata["include"]) + len(metadata.get("exclude", []))
    share = 1.0 - len(reasons) / total
    return Judgement(correct, found, matched, "; ".join(reasons), max(share, 0.0))


def flow_grpo_score(found: list[Detection], metadata: dict) -> float:
    """The partial score Flow-GRPO trains on for GenEval prompts (its reward server's
    `evaluate_reward`), on one image's detections: the mean of one term per check.

    For each `include` requirement of class c and count n, with F every object of class c found:
    1 - |n - |F|| / n; if |F| != n, one more term 0 when the requirement names a colour or a
    position; else, with a colour, 1 - |n - (objects of F with it)| / n, and with a position
    (when the colour held) 0 if requirement i matched nothing, else 1 after a 0 if some object
    of F is not in the relation to some object of requirement i (the server appends both, so
    a wrong relation scores 1/2 where a missing target scores 0). Requirement i "matched" when
    all of its checks held. `exclude` requirements are not read: the exact counts stand in for
    them. So an extra object of a named class costs as much as a missing one, and a term can
    be negative (3 circles for "a circle": -1)."""
    check_metadata(metadata)
    by_class = objects_by_class(found)
    terms: list[float] = []
    groups: list[list[Detection] | None] = []
    for req in metadata["include"]:
        count, objects = int(req["count"]), by_class.get(req["class"], [])
        terms.append(1 - abs(count - len(objects)) / count)
        matched = len(objects) == count
        if not matched:
            if "color" in req or "position" in req:
                terms.append(0.0)
        else:
            if "color" in req:
                right = [d.color for d in objects].count(req["color"])
                terms.append(1 - abs(count - right) / count)
                matched = right == count
            if "position" in req and matched:
                relation, target = req["position"]
                if groups[target] is None:
                    terms.append(0.0)
                    matched = False
                else:
                    if not all(
                        relation in relations(d.box, t.box) for d in objects for t in groups[target]
                    ):
                        terms.append(0.0)
                        matched = False
                    terms.append(1.0)
        groups.append(objects if matched else None)
    return sum(terms) / len(terms)


def judge_batch(images: torch.Tensor, metadata: Sequence[dict]) -> list[Judgement]:
    """images (N, 3, H, W), N metadata records -> N judgements."""
    if len(images) != len(metadata):
        raise ValueError(f"got {len(images)} images but {len(metadata)} metadata records")
    return [
        judge_objects(found, meta) for found, meta in zip(detect(images), metadata, strict=True)
    ]


def geneval_score(correct: Sequence[bool], tags: Sequence[str]) -> dict[str, float]:
    """Accuracy per tag and "geneval": their mean (GenEval's overall score)."""
    per_tag: dict[str, list[float]] = {}
    for right, tag in zip(correct, tags, strict=True):
        per_tag.setdefault(tag, []).append(float(right))
    scores = {tag: sum(v) / len(v) for tag, v in per_tag.items()}
    scores["geneval"] = sum(scores.values()) / len(scores) if scores else float("nan")
    return scores


# ---------------------------------------------------------------------------------------------
# A wrong version of one object (the blame test)
# ---------------------------------------------------------------------------------------------


def wrong_versions(detection: Detection, metadata: dict) -> list[dict]:
    """The changes that make a found object wrong for its prompt: another class always, and
    another colour where the prompt names the colour."""
    named_colors = {req.get("color") for req in metadata["include"]} - {None}
    changes = [{"shape": s} for s in SHAPES if s != detection.shape]
    if named_colors:
        changes += [{"color": c} for c in COLORS if c != detection.color]
    return changes


def redraw(
    image: torch.Tensor, detection: Detection, change: dict, rng: np.random.Generator
) -> torch.Tensor:
    """image (3, H, W) with one found object drawn again with `change` (another shape or
    colour) in the same box; the tiles the box touches are drawn anew (the flat ground and the
    new object), every other pixel is kept."""
    x0, y0, x1, y1 = detection.box
    size = min(max(x1 - x0, y1 - y0), IMAGE_SIZE)
    x, y = min(x0, IMAGE_SIZE - size), min(y0, IMAGE_SIZE - size)
    obj = SceneObject(detection.shape or SHAPES[0], detection.color, x, y, size)
    fresh = draw([dataclasses.replace(obj, **change)], rng).image
    px0, py0 = (x // PATCH) * PATCH, (y // PATCH) * PATCH
    px1, py1 = -(-(x + size) // PATCH) * PATCH, -(-(y + size) // PATCH) * PATCH
    edited = image.clone()
    edited[:, py0:py1, px0:px1] = fresh[:, py0:py1, px0:px1]
    return edited


def wrong_edit(image: torch.Tensor, metadata: dict, seed: int) -> tuple[torch.Tensor, dict] | None:
    """A right image made wrong in one place, and the change that did it ({"shape": ...} or
    {"color": ...}): one object matched to the prompt redrawn with another class (or, where the
    prompt names colours, another colour), chosen at random from `seed`, among the redrawings
    the oracle judges wrong; None if the image is not right or no redrawing is."""
    judgement = judge_batch(image[None], [metadata])[0]
    if not judgement.correct or not judgement.matched:
        return None
    rng = np.random.default_rng(seed)
    for index in rng.permutation(len(judgement.matched)):
        detection = judgement.matched[index]
        options = wrong_versions(detection, metadata)
        for choice in rng.permutation(len(options)):
            edited = redraw(image, detection, options[choice], rng)
            if not judge_batch(edited[None], [metadata])[0].correct:
                return edited, options[choice]
    return None


def wrong_version(image: torch.Tensor, metadata: dict, seed: int) -> torch.Tensor | None:
    """The image of `wrong_edit` (the blame test's input), or None."""
    edit = wrong_edit(image, metadata, seed)
    return None if edit is None else edit[0]
