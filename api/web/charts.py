"""Charts of the regional analytics, drawn on the server as SVG.

- ``bar_chart``: a horizontal bar chart with matplotlib (Agg backend, SVG output);
- ``tile_map``: a tile-grid choropleth — each region one square, placed on a grid by its
  centroid (``data/taxonomy/regions.json``) and moved to the nearest free cell where regions
  crowd, coloured by its value in six classes. A tile grid keeps small, busy regions (Shanghai,
  Tianjin) as visible as large empty ones and needs no boundary files; the tables beside the
  charts carry the exact figures.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from html import escape

# Light to dark (ColorBrewer "Blues", 6 classes); no data: grey.
PALETTE = ("#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
EMPTY = "#e5e5e5"
CELL = 46  # px


def tile_grid(
    points: Mapping[str, tuple[float, float]], columns: int
) -> dict[str, tuple[int, int]]:
    """(row, column) of each region from its (lat, lon): the cell nearest its projected
    centroid that no region placed before took (regions placed west to east, north to south)."""
    if not points:
        return {}
    mid = math.radians(sum(lat for lat, _ in points.values()) / len(points))
    xy = {code: (lon * math.cos(mid), -lat) for code, (lat, lon) in points.items()}
    xs, ys = [x for x, _ in xy.values()], [y for _, y in xy.values()]
    span = max(max(xs) - min(xs), 1e-6)
    size = span / max(columns - 1, 1)
    exact = {c: ((y - min(ys)) / size, (x - min(xs)) / size) for c, (x, y) in xy.items()}
    taken: dict[tuple[int, int], str] = {}
    placed: dict[str, tuple[int, int]] = {}
    for code in sorted(exact, key=lambda c: (round(exact[c][0]), exact[c][1], c)):
        row, col = exact[code]
        best: tuple[float, tuple[int, int]] | None = None
        for ring in range(0, 2 * columns):
            for r in range(round(row) - ring, round(row) + ring + 1):
                for c in range(round(col) - ring, round(col) + ring + 1):
                    if (r, c) in taken or c < 0 or r < 0:
                        continue
                    d = (r - row) ** 2 + (c - col) ** 2
                    if best is None or d < best[0]:
                        best = (d, (r, c))
            if best is not None and math.sqrt(best[0]) <= ring:
                break
        assert best is not None
        taken[best[1]] = code
        placed[code] = best[1]
    return placed


def classes(values: Mapping[str, float]) -> tuple[list[float], dict[str, str]]:
    """Upper bounds of six equal-width classes over the positive values, and each region's
    colour (grey for none)."""
    top = max([v for v in values.values() if v > 0], default=0.0)
    bounds = [top * (i + 1) / len(PALETTE) for i in range(len(PALETTE))]
    colour = {}
    for code, v in values.items():
        if v <= 0:
            colour[code] = EMPTY
        else:
            colour[code] = PALETTE[min(len(PALETTE) - 1, int(v / top * len(PALETTE) - 1e-9))]
    return bounds, colour


def tile_map(
    cells: Mapping[str, tuple[int, int]],
    values: Mapping[str, float],
    names: Mapping[str, str],
    labels: Mapping[str, str],
    title: str,
) -> str:
    """The choropleth as an SVG document (each tile titled with its name and value)."""
    _, colour = classes({c: values.get(c, 0.0) for c in cells})
    rows = max((r for r, _ in cells.values()), default=0) + 1
    cols = max((c for _, c in cells.values()), default=0) + 1
    width, height = cols * CELL + 8, rows * CELL + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="18" font-size="14" font-family="sans-serif">{escape(title)}</text>',
    ]
    for code, (r, c) in sorted(cells.items()):
        x, y = 4 + c * CELL, 28 + r * CELL
        value = values.get(code, 0.0)
        text = f"{names.get(code, code)}: {value:g}"
        dark = colour[code] in PALETTE[3:]
        parts.append(
            f"<g><title>{escape(text)}</title>"
            f'<rect x="{x}" y="{y}" width="{CELL - 3}" height="{CELL - 3}" rx="4" '
            f'fill="{colour[code]}" stroke="#fff"/>'
            f'<text x="{x + (CELL - 3) / 2}" y="{y + 20}" font-size="11" text-anchor="middle" '
            f'font-family="sans-serif" fill="{"#fff" if dark else "#222"}">'
            f"{escape(labels.get(code, code))}</text>"
            f'<text x="{x + (CELL - 3) / 2}" y="{y + 35}" font-size="10" text-anchor="middle" '
            f'font-family="sans-serif" fill="{"#fff" if dark else "#222"}">{value:g}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(items: list[tuple[str, float]], title: str, xlabel: str) -> str:
    """A horizontal bar chart (largest on top) as an SVG document, drawn with matplotlib."""
    import matplotlib
    from matplotlib.figure import Figure

    shown = items[:15][::-1]
    # text stays text in the SVG: the browser draws Chinese names with its own fonts
    with matplotlib.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs matplotlib's own fonts lack
        figure = Figure(figsize=(7, max(2.0, 0.35 * len(shown) + 1.2)))
        axes = figure.add_subplot()
        axes.barh([name for name, _ in shown], [value for _, value in shown], color=PALETTE[4])
        axes.set_title(title)
        axes.set_xlabel(xlabel)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        out = io.StringIO()
        figure.savefig(out, format="svg")
    return out.getvalue()
