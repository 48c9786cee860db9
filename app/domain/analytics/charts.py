"""Server-rendered SVG charts: no JavaScript, no CDN, readable on the dark theme, tooltips via <title>.

Each function returns ``Markup`` to drop into a template. Charts scale with their container (``viewBox``);
colours come from ``static/css/admin.css`` classes (``.chart .s0`` ... ``.s5``) so a palette change is one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

Fmt = Callable[[float], str]


def fmt_number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}K".replace(".0K", "K")
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def fmt_percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def fmt_seconds(value: float) -> str:
    if value >= 60:
        return f"{int(value // 60)}m{int(value % 60):02d}s"
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"


@dataclass
class Series:
    name: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    base = 10 ** exponent
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * base:
            return step * base
    return 10 * base


def _svg(width: int, height: int, label: str, body: list[str], extra_class: str = "") -> Markup:
    return Markup(
        f'<svg class="chart {extra_class}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts, offset = [], 0.0
    for index, item in enumerate(series):
        parts.append(f'<rect class="s{index % 6} fill" x="{x + offset:.1f}" y="{y - 9}" width="10" height="10" rx="2"/>'
                     f'<text class="legend" x="{x + offset + 14:.1f}" y="{y}">{escape(item.name)}</text>')
        offset += 24 + 7 * len(item.name)
    return parts


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, fmt: Fmt = fmt_number,
               y_max: float | None = None, width: int = 640, height: int = 240, area: bool = True,
               x_every: int | None = None) -> Markup:
    """One or more series over shared x labels (e.g. days). ``None`` values leave a gap."""
    left, right, top, bottom = 48, 12, 28 if len(series) > 1 else 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [v for s in series for v in s.values if v is not None]
    top_value = y_max if y_max is not None else _nice_max(max(finite, default=0.0) * 1.05)
    n = max(len(labels), 1)

    def x_of(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * (v / top_value if top_value else 0)

    body = []
    for tick in range(5):
        value = top_value * tick / 4
        y = y_of(value)
        body.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(value))}</text>')
    every = x_every or max(1, math.ceil(n / max(2, min(8, plot_w // 64))))
    for i, label in enumerate(labels):
        if (i % every == 0 and n - 1 - i >= every * 0.6) or i == n - 1:
            body.append(f'<text class="axis" x="{x_of(i):.1f}" y="{height - 8}" text-anchor="middle">'
                        f"{escape(label)}</text>")
    for index, item in enumerate(series):
        runs: list[list[tuple[float, float, float, str]]] = [[]]
        for i, value in enumerate(item.values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append((x_of(i), y_of(value), value, labels[i] if i < len(labels) else ""))
        for run in (r for r in runs if r):
            path = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y, _, _) in enumerate(run))
            if area and len(series) == 1 and len(run) > 1:
                base = top + plot_h
                body.append(f'<path class="s{index % 6} area" d="{path} L{run[-1][0]:.1f},{base} '
                            f'L{run[0][0]:.1f},{base} Z"/>')
            body.append(f'<path class="s{index % 6} line" d="{path}"/>')
            for x, y, value, label in run:
                body.append(f'<circle class="s{index % 6} dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                            f"<title>{escape(item.name)} · {escape(label)}: {escape(fmt(value))}</title></circle>")
    if len(series) > 1:
        body.extend(_legend(series, left, 16))
    return _svg(width, height, title, body)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, fmt: Fmt = fmt_number,
              width: int = 640, height: int = 220, highlight: int | None = None) -> Markup:
    left, right, top, bottom = 44, 8, 14, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(values, default=0.0) * 1.05)
    n = max(len(values), 1)
    slot = plot_w / n
    bar = max(2.0, slot * 0.7)
    body = []
    for tick in range(5):
        value = top_value * tick / 4
        y = top + plot_h - plot_h * value / top_value
        body.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(value))}</text>')
    every = max(1, math.ceil(n / max(2, plot_w // 60)))
    for i, (label, value) in enumerate(zip(labels, values, strict=False)):
        h = plot_h * value / top_value
        x = left + i * slot + (slot - bar) / 2
        cls = "s1" if highlight is not None and i == highlight else "s0"
        body.append(f'<rect class="{cls} fill" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                    f'height="{max(h, 0.5):.1f}" rx="2"><title>{escape(label)}: {escape(fmt(value))}</title></rect>')
        if i % every == 0:
            body.append(f'<text class="axis" x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                        f"{escape(label)}</text>")
    return _svg(width, height, title, body)


def hbar_chart(items: Sequence[tuple[str, float]], *, title: str, fmt: Fmt = fmt_number, width: int = 420,
               row: int = 26) -> Markup:
    """Horizontal bars with their labels and values: good for shares by source, hashtags, reasons."""
    label_w, value_w = 120, 56
    height = max(row * len(items), row) + 6
    top_value = max((v for _, v in items), default=0.0) or 1.0
    plot_w = width - label_w - value_w
    body = []
    for i, (label, value) in enumerate(items):
        y = 3 + i * row
        w = plot_w * value / top_value
        body.append(f'<text class="label" x="{label_w - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end">'
                    f"{escape(_clip(label, 18))}</text>"
                    f'<rect class="track" x="{label_w}" y="{y + 4}" width="{plot_w}" height="{row - 10}" rx="4"/>'
                    f'<rect class="s{i % 6} fill" x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" '
                    f'height="{row - 10}" '
                    f'rx="4"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
                    f'<text class="value" x="{label_w + plot_w + 6}" y="{y + row / 2 + 4:.1f}">'
                    f"{escape(fmt(value))}</text>")
    return _svg(width, height, title, body)


def lorenz_chart(points: Sequence[tuple[float, float]], *, title: str, width: int = 260, height: int = 240) -> Markup:
    """Lorenz curve of exposure: the further below the diagonal, the more unequal."""
    pad = 30
    size_w, size_h = width - pad - 10, height - pad - 10
    def xy(p: tuple[float, float]) -> tuple[float, float]:
        return pad + p[0] * size_w, 10 + size_h - p[1] * size_h

    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(map(xy, points)))
    x0, y0 = xy((0, 0))
    x1, y1 = xy((1, 1))
    body = [f'<rect class="track" x="{pad}" y="10" width="{size_w}" height="{size_h}" rx="4"/>',
            f'<line class="diagonal" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}"/>',
            f'<path class="s1 area" d="{path} L{x1:.1f},{y0:.1f} Z"/>',
            f'<path class="s1 line" d="{path}"/>',
            f'<text class="axis" x="{pad + size_w / 2}" y="{height - 6}" text-anchor="middle">'
            "creators, least exposed first</text>",
            f'<text class="axis" x="12" y="{10 + size_h / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {10 + size_h / 2})">share of impressions</text>']
    return _svg(width, height, title, body)


def interval_chart(rows: Sequence[tuple[str, float, float, float]], *, title: str, fmt: Fmt = fmt_number,
                   width: int = 420, row: int = 30) -> Markup:
    """Estimates with confidence intervals (label, estimate, low, high), one row each: a forest plot."""
    label_w, value_w = 110, 120
    height = row * max(len(rows), 1) + 24
    lows = [lo for _, _, lo, _ in rows] or [0.0]
    highs = [hi for _, _, _, hi in rows] or [1.0]
    lo_all, hi_all = min(0.0, min(lows)), max(highs)
    span = (hi_all - lo_all) or 1.0
    lo_all -= span * 0.05
    hi_all += span * 0.05
    plot_w = width - label_w - value_w

    def x_of(v: float) -> float:
        return label_w + plot_w * (v - lo_all) / (hi_all - lo_all)

    body = [f'<line class="grid" x1="{x_of(rows[0][1]) if rows else label_w:.1f}" '
            f'x2="{x_of(rows[0][1]) if rows else label_w:.1f}" y1="4" y2="{height - 20}" stroke-dasharray="3 3"/>']
    for i, (label, estimate, lo, hi) in enumerate(rows):
        y = 4 + i * row + row / 2
        body.append(f'<text class="label" x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end">'
                    f"{escape(_clip(label, 14))}</text>"
                    f'<line class="s{i % 6} whisker" x1="{x_of(lo):.1f}" x2="{x_of(hi):.1f}" '
                    f'y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<circle class="s{i % 6} dot big" cx="{x_of(estimate):.1f}" cy="{y:.1f}" r="5">'
                    f"<title>{escape(label)}: {escape(fmt(estimate))} "
                    f"[{escape(fmt(lo))}, {escape(fmt(hi))}]</title></circle>"
                    f'<text class="value" x="{label_w + plot_w + 8}" y="{y + 4:.1f}">{escape(fmt(estimate))} '
                    f'<tspan class="muted">±{escape(fmt((hi - lo) / 2))}</tspan></text>')
    body.append(f'<text class="axis" x="{label_w}" y="{height - 4}">{escape(fmt(lo_all))}</text>'
                f'<text class="axis" x="{label_w + plot_w}" y="{height - 4}" text-anchor="end">'
                f"{escape(fmt(hi_all))}</text>")
    return _svg(width, height, title, body)


def sparkline(values: Sequence[float], *, title: str, width: int = 120, height: int = 32) -> Markup:
    if not values:
        return Markup("")
    top_value = max(values) or 1.0
    n = len(values)
    pts = [(2 + (width - 4) * (i / (n - 1) if n > 1 else 0.5), height - 3 - (height - 6) * v / top_value)
           for i, v in enumerate(values)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(pts))
    return _svg(width, height, title, [f'<path class="s0 line" d="{path}"/>'], "spark")


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
