"""Minimal SVG charts for the HTML reports (scatter, lines, log axes), without matplotlib.

Reports must open anywhere, offline, from a single file: inline SVG does that with no dependency.
"""

import html
import math

import numpy as np

PALETTE = ["#2c7bb6", "#d7191c", "#1a9641", "#fdae61", "#7b3294", "#555555"]


def _ticks(lo, hi, n=5):
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= n:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(v):
    return f"{v:.3g}"


def chart(series, title="", xlabel="", ylabel="", logx=False, logy=False, width=520, height=340):
    """Return an SVG string. series: dicts with x, y, label, style ('points' or 'line'), colour.

    With logx/logy the axis shows log10 of the values (non-positive values are dropped).
    """
    left, right, top, bottom = 70, 20, 30, 50
    pw, ph = width - left - right, height - top - bottom
    prepared = []
    for i, s in enumerate(series):
        x = np.asarray(s["x"], float)
        y = np.asarray(s["y"], float)
        ok = np.isfinite(x) & np.isfinite(y)
        if logx:
            ok &= x > 0
        if logy:
            ok &= y > 0
        x, y = x[ok], y[ok]
        if logx:
            x = np.log10(x)
        if logy:
            y = np.log10(y)
        prepared.append((s, x, y, s.get("colour", PALETTE[i % len(PALETTE)])))
    xs = np.concatenate([p[1] for p in prepared]) if prepared else np.array([0.0])
    ys = np.concatenate([p[2] for p in prepared]) if prepared else np.array([0.0])
    if xs.size == 0:
        xs = ys = np.array([0.0, 1.0])
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 <= y0:
        y0, y1 = y0 - 1, y1 + 1
    pad = 0.04 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def sx(v):
        return left + (v - x0) / (x1 - x0) * pw

    def sy(v):
        return top + ph - (v - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="white" stroke="#999"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
    ]
    for t in _ticks(x0, x1):
        label = _fmt(10**t) if logx else _fmt(t)
        out.append(f'<line x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 4}" stroke="#333"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{label}</text>')
    for t in _ticks(y0, y1):
        label = _fmt(10**t) if logy else _fmt(t)
        out.append(f'<line x1="{left - 4}" y1="{sy(t):.1f}" x2="{left}" y2="{sy(t):.1f}" stroke="#333"/>')
        out.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">{html.escape(xlabel)}</text>'
    )
    out.append(
        f'<text transform="translate(14,{top + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{html.escape(ylabel)}</text>"
    )
    for i, (s, x, y, colour) in enumerate(prepared):
        if s.get("style", "points") == "line" and x.size > 1:
            pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x, y))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        else:
            out.extend(
                f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="2.5" fill="{colour}" fill-opacity="0.7"/>'
                for a, b in zip(x, y)
            )
        if s.get("label"):
            ly = top + 14 + 14 * i
            out.append(f'<rect x="{left + 8}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
            out.append(f'<text x="{left + 22}" y="{ly + 1}">{html.escape(s["label"])}</text>')
    out.append("</svg>")
    return "\n".join(out)
