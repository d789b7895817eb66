"""Reports a geologist reads without a calculator, and of a reasonable size (issue 14)."""

import re

import numpy as np

from janja_plugin.core.evaluation import evaluate as ev
from janja_plugin.core.reporting import svgplot
from janja_plugin.core.reporting.report import HtmlReport


def tick_labels(svg):
    return re.findall(r'text-anchor="(?:middle|end)">([^<]*)</text>', svg)


def test_log_axis_ticks_are_readable_decimals():
    x = np.logspace(-5, 0, 50)
    svg = svgplot.chart([{"x": x, "y": x, "style": "line"}], logx=True, logy=True, xlabel="Au (ppm)")
    labels = [t for t in tick_labels(svg) if t != "Au (ppm)"]
    assert labels and not any("e" in t for t in labels), labels
    assert {"0.0001", "0.001", "0.01", "0.1", "1"} <= set(labels)
    short = svgplot.chart([{"x": [0.02, 0.09], "y": [1, 2]}], logx=True)  # within a decade: 1-2-5 ticks
    assert {"0.02", "0.05"} <= set(tick_labels(short))


def test_report_tables_print_plain_decimals():
    rep = HtmlReport("t")
    rep.table(["a", "b", "c"], [[3.08e-05, 84360.0, 0.5]])
    assert "<td>0.00003080</td>" in rep.html() or "<td>0.0000308</td>" in rep.html()
    assert "<td>84,360</td>" in rep.html() and "e-05" not in rep.html()


def test_a_curve_with_a_vertex_per_cell_is_thinned_to_what_the_pixels_show():
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=400_000))
    x = np.arange(y.size, dtype=float)
    svg = svgplot.chart([{"x": x, "y": y, "style": "line"}])
    assert len(svg) < 60_000
    px, py = 70 + x / x.max() * 430, 30 + (y - y.min()) / np.ptp(y) * 260
    tx, ty = svgplot._thin_line(px, py, 4 * 430)
    assert tx.size < 4 * 431 and tx[0] == px[0] and tx[-1] == px[-1]
    cols, tcols = np.floor(px).astype(int), np.floor(tx).astype(int)
    for c in np.unique(cols)[::37]:  # every pixel column keeps its lowest and highest point
        assert ty[tcols == c].min() == py[cols == c].min() and ty[tcols == c].max() == py[cols == c].max()


def test_curve_vertices_keep_a_success_rate_curve_exactly():
    rng = np.random.default_rng(1)
    scores = rng.random(200_000)
    deposits = rng.choice(scores, 30) ** 0.5
    success = ev.success_rate_curve(scores, deposits)
    keep = ev.curve_vertices(success.area_share, success.deposit_share)
    assert keep.size < 300 and success.area_share.size > 100_000
    again = np.interp(success.area_share, success.area_share[keep], success.deposit_share[keep])
    np.testing.assert_allclose(again, success.deposit_share, atol=1e-12)
    near = success.area_share[keep]
    assert np.max(np.diff(np.sort(near))) <= 0.0051  # a row at least every 0.5 % of the area


def test_threshold_and_fractal_reports_carry_the_unit():
    from janja_plugin.core.anomaly import fractal, thresholds

    rng = np.random.default_rng(2)
    values = np.exp(rng.normal(0, 1, 500))
    rep = HtmlReport("t")
    res = thresholds.median_mad_thresholds(values, k=[1, 2])
    thresholds.report_section(rep, {"median_mad": res}, element="Cu_ppm", values=values)
    ca = fractal.concentration_number(values)
    fractal.report_section(rep, ca, element="Cu_ppm")
    text = rep.html()
    assert "value (ppm)" in text and "Cu (ppm)" in text and not re.search(r"\d[eE][+-]\d", re.sub("<[^>]+>", "", text))
