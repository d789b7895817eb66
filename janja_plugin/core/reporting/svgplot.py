"""Minimal SVG charts for the HTML reports (scatter, lines, log axes), without matplotlib.

Reports must open anywhere, offline, from a single file: inline SVG does that with no dependency.
Kept instead of matplotlib (which QGIS ships): the charts here are a few curves and scatters, the SVG is
exact and small, needs no backend or font cache at run time, and the tests can read its text (tick labels).
A curve with one vertex per raster cell is thinned to what the pixels can show (corners kept, then at
most the first/min/max/last vertex per pixel column), so a 400,000-cell curve costs kilobytes, not MB.
A scatter draws at most MAX_POINTS circles (a 10^6-sample kriging report drew 61,904 and weighed 4.6 MB):
beyond that a seeded, spatially even subsample is drawn and the legend says how many of how many.
"""

import html
import math

import numpy as np

PALETTE = ["#2c7bb6", "#d7191c", "#1a9641", "#fdae61", "#7b3294", "#555555"]
MAX_POINTS = 5000  # circles drawn per scatter series at most; about 75 bytes each in the report
SUBSAMPLE_SEED = 20261202  # the same data always draw the same points


def _log_ticks(lo, hi):
    """Ticks of a log10 axis at readable values: decades, or 1-2-5 within them when the range is short."""
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return [lo]
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    for mults in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [d + math.log10(m) for d in decades for m in mults if lo <= d + math.log10(m) <= hi]
        if len(ticks) >= 3:
            break
    if len(ticks) > 8:
        step = math.ceil(len(ticks) / 8)
        ticks = ticks[::step]
    return ticks or [lo]


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
    """0.03, 1,250, 0.5: plain decimals (a log axis must not read 3.16e-05)."""
    from .units import number

    return number(round(v, 12), 3)


def _thin_line(px, py, max_points):
    """Vertices of a screen polyline that draw the same picture: collinear ones dropped, then at most the
    first, lowest, highest and last vertex of each pixel column."""
    if px.size <= 3:
        return px, py
    keep = np.ones(px.size, bool)
    dx1, dy1 = px[1:-1] - px[:-2], py[1:-1] - py[:-2]
    dx2, dy2 = px[2:] - px[1:-1], py[2:] - py[1:-1]
    # exactly collinear (up to rounding): the straight runs of a step curve between two deposits
    keep[1:-1] = np.abs(dx1 * dy2 - dy1 * dx2) > 1e-9 * np.hypot(dx1, dy1) * np.hypot(dx2, dy2)
    px, py = px[keep], py[keep]
    if px.size <= max_points:
        return px, py
    column = np.floor(px).astype(np.int64)
    starts = np.r_[0, np.nonzero(np.diff(column))[0] + 1]
    ends = np.r_[starts[1:], px.size]
    picks = []
    for a, b in zip(starts, ends):
        seg = py[a:b]
        picks.extend(sorted({a, a + int(np.argmin(seg)), a + int(np.argmax(seg)), b - 1}))
    idx = np.asarray(picks)
    return px[idx], py[idx]


def _thin_points(px, py):
    """Scatter points that fall on the same half pixel are drawn once."""
    if px.size <= 2000:
        return px, py
    _, idx = np.unique(np.round(np.c_[px, py] * 2), axis=0, return_index=True)
    idx = np.sort(idx)
    return px[idx], py[idx]


def _even_subsample(px, py, cap=MAX_POINTS, seed=SUBSAMPLE_SEED):
    """Indices (in drawing order) of `cap` of the points: first one point in every occupied square of a screen
    grid as fine as allows at most cap/5 squares (so isolated points, the outliers a geologist looks for, stay),
    then a seeded uniform draw of the rest (so dense parts stay about as dense as they are). Deterministic."""
    n = px.size
    priority = np.random.default_rng(seed).random(n)
    span = max(float(np.ptp(px)), float(np.ptp(py)), 1.0)

    def cells(size):
        key = np.floor(px / size).astype(np.int64) * 1_000_003 + np.floor(py / size).astype(np.int64)
        return np.unique(key, return_inverse=True)

    lo, hi = 0.5, 2.0 * span  # square sides in pixels: too many squares at lo (else no cap needed), one at hi
    for _ in range(30):
        mid = math.sqrt(lo * hi)
        if cells(mid)[0].size > cap // 5:
            lo = mid
        else:
            hi = mid
    _, inverse = cells(hi)
    by_priority = np.argsort(priority, kind="stable")
    _, first = np.unique(inverse[by_priority], return_index=True)
    chosen = np.zeros(n, bool)
    chosen[by_priority[first]] = True
    rest = by_priority[~chosen[by_priority]][: cap - int(chosen.sum())]
    chosen[rest] = True
    return np.nonzero(chosen)[0]


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
    for t in (_log_ticks(x0, x1) if logx else _ticks(x0, x1)):
        label = _fmt(10**t) if logx else _fmt(t)
        out.append(f'<line x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 4}" stroke="#333"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{label}</text>')
    for t in (_log_ticks(y0, y1) if logy else _ticks(y0, y1)):
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
        px, py = sx(x), sy(y)
        label = s.get("label")
        if s.get("style", "points") == "line" and x.size > 1:
            px, py = _thin_line(px, py, 4 * pw)
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        else:
            total = px.size
            px, py = _thin_points(px, py)  # the same picture
            if px.size > MAX_POINTS:  # not the same picture: say so in the legend
                keep = _even_subsample(px, py)
                px, py = px[keep], py[keep]
                label = f"{px.size:,} of {total:,} {label or 'points'} drawn"
            out.extend(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}" fill-opacity="0.7"/>'
                for a, b in zip(px, py)
            )
        if label:
            ly = top + 14 + 14 * i
            out.append(f'<rect x="{left + 8}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
            out.append(f'<text x="{left + 22}" y="{ly + 1}">{html.escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)
