"""Static HTML pages: the heatmap gallery (links PNGs beside it) and the self-contained
training report (everything inlined), both opened from disk with no server."""

from __future__ import annotations

import base64
import fnmatch
import html
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

from t2i_gcpo.files import write_text_atomic

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
figure { display: inline-block; margin: 8px; vertical-align: top; }
figcaption { font-size: 12px; color: #555; max-width: 640px; }
img { max-width: 100%; border: 1px solid #ddd; image-rendering: pixelated; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.meta { font-size: 13px; color: #444; }
"""


def page(title: str, body: str) -> str:
    """A whole HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def figure_html(src: str, caption: str = "", alt: str = "") -> str:
    """An <img> with a caption; src is a relative path or a data URI."""
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img src="{html.escape(src, quote=True)}" '
        f'alt="{html.escape(alt or caption, quote=True)}">{cap}</figure>'
    )


def data_uri(path: str | Path) -> str:
    """A PNG file as a data: URI (so the page carries the image inside)."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


def write_gallery(
    out: str | Path,
    title: str,
    sections: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    details: dict | None = None,
) -> Path:
    """out/index.html: a header table of `details`, then per section (heading, [(file
    relative to out, caption)]) its images. Every file must exist under out."""
    out = Path(out)
    parts = []
    if details:
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in details.items()
        )
        parts.append(f'<table class="meta">{rows}</table>')
    for heading, images in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for name, caption in images:
            if not (out / name).is_file():
                raise FileNotFoundError(f"gallery image {out / name} does not exist")
            parts.append(figure_html(Path(name).as_posix(), caption))
    return write_text_atomic(out / "index.html", page(title, "\n".join(parts)))


# -- training report --------------------------------------------------------------------------

CURVE_GROUPS = (
    ("reward", ("reward/mean",)),
    ("held-out accuracy (judge)", ("eval/oracle/*",)),
    ("held-out reward", ("eval/reward/mean",)),
    ("held-out objects beyond the prompt's", ("eval/objects/extra",)),
    ("credit: object AUROC (0.5 = chance)", ("eval/credit/*/object_auroc", "probe/object_auroc")),
    ("credit: blame-test AUROC", ("eval/credit/*/blame_*auroc",)),
    ("credit: precision at K", ("eval/credit/*/precision_at_k", "eval/credit/null/chance_at_k")),
    ("loss", ("loss",)),
    ("KL to reference", ("policy/kl_mean",)),
    ("entropy", ("rollout/entropy",)),
    ("seconds per stage", ("time/*",)),
)
"""Report plots: a title and the metric names (fnmatch patterns) drawn in it."""


def read_metrics(path: Path) -> list[dict]:
    """metrics.jsonl -> one dict per line; names the file and line on a malformed line."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {number}: not JSON ({err.msg})") from err
    return records


def curves_png(records: list[dict]) -> bytes | None:
    """PNG bytes of one small plot per metric group present in `records` (None if none)."""
    from matplotlib.figure import Figure

    names = sorted({key for record in records for key in record})
    groups = []
    for title, patterns in CURVE_GROUPS:
        present = [n for pattern in patterns for n in names if fnmatch.fnmatchcase(n, pattern)]
        if present:
            groups.append((title, list(dict.fromkeys(present))))
    if not groups:
        return None
    columns = min(3, len(groups))
    rows = -(-len(groups) // columns)
    fig = Figure(figsize=(4.6 * columns, 3.0 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, (title, keys) in zip(axes.flat, groups, strict=False):
        for key in keys:
            points = [(r["step"], r[key]) for r in records if key in r and "step" in r]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="o" if len(points) < 20 else None, ms=3, label=key)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _step_of(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else -1


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """RUN_DIR/report.html (or `out`): metric curves, final figures, the first and last sample
    grids and the credit overlays over time, with every image inlined."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    if not metrics_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a training run folder: {metrics_path.name} is missing "
            "(t2i-gcpo train writes it)"
        )
    records = read_metrics(metrics_path)
    parts = []
    config = run_dir / "config.yaml"
    if config.is_file():
        parts.append(
            "<details><summary>config.yaml</summary><pre>"
            f"{html.escape(config.read_text(encoding='utf-8'))}</pre></details>"
        )
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    if evals:
        keys = sorted({k for r in evals for k in r if k.startswith("eval/")})
        header = "".join(f"<th>{html.escape(k[5:])}</th>" for k in keys)
        rows = "".join(
            f"<tr><td>{r.get('step', '')}</td>"
            + "".join(
                f"<td>{r[k]:.3f}</td>" if isinstance(r.get(k), (int, float)) else "<td></td>"
                for k in keys
            )
            + "</tr>"
            for r in evals
        )
        parts.append(
            f"<h2>Held-out evaluation</h2><table><tr><th>step</th>{header}</tr>{rows}</table>"
        )
    curves = curves_png(records)
    if curves is not None:
        encoded = "data:image/png;base64," + base64.b64encode(curves).decode("ascii")
        parts.append("<h2>Metrics</h2>" + figure_html(encoded, "metrics.jsonl against step"))
    samples = sorted((run_dir / "samples").glob("*.png"), key=_step_of)
    if samples:
        parts.append("<h2>Samples: first and last</h2>")
        for path in [samples[0], samples[-1]] if len(samples) > 1 else samples:
            parts.append(figure_html(data_uri(path), f"step {_step_of(path)}"))
    heatmaps = sorted((run_dir / "heatmaps").glob("*.png"), key=_step_of)
    if heatmaps:
        parts.append("<h2>Credit overlays over time (probe prompt)</h2>")
        parts.extend(figure_html(data_uri(p), f"step {_step_of(p)}") for p in heatmaps)
    if not records:
        parts.append("<p>No metrics were logged yet.</p>")
    out = Path(out) if out else run_dir / "report.html"
    return write_text_atomic(out, page(f"Training report: {run_dir.name}", "\n".join(parts)))
