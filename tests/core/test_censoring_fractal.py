"""C–N with non-detects: the curve counts measured samples only, censored rows are background, and
too few detections is a sentence, not a fit to substituted values."""

import numpy as np
import pytest

from janja_plugin.core.anomaly import fractal
from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics.samples import parse_censored
from janja_plugin.core.reporting.report import HtmlReport


def survey(n_below=600, n_measured=300, limit="<0.1", seed=0):
    """A Pareto-tailed element measured above 0.1, with many non-detects: the C–N curve is a line."""
    rng = np.random.default_rng(seed)
    measured = 0.1 * (1 - rng.random(n_measured)) ** (-1 / 1.2)
    return parse_censored([limit] * n_below + [f"{v:.4f}" for v in measured], column="Au")


def cn(p, **kw):
    return fractal.concentration_number(p.values, censored=p.below_detection, **kw)


def test_non_detects_are_background_whatever_the_breaks():
    p = survey()
    for n in (1, 2, 3):
        res = cn(p, n_segments=n)
        assert (res.classify(p.values, p.below_detection)[p.below_detection] == 0).all()


def test_the_curve_starts_at_the_smallest_measured_value():
    p = survey()
    res = cn(p)
    assert res.levels[0] == pytest.approx(p.values[~p.below_detection].min())
    assert res.n_values == 300 and res.n_censored == 600


def test_counts_are_measured_samples_at_or_above_each_level():
    p = survey()
    res = cn(p)
    measured = p.values[~p.below_detection]
    np.testing.assert_array_equal(res.sizes, [(measured >= c).sum() for c in res.levels])


def test_result_equals_the_curve_of_the_measured_values():
    p = survey(seed=3)
    a = cn(p, n_segments=2)
    b = fractal.concentration_number(p.values[~p.below_detection], n_segments=2)
    np.testing.assert_allclose(a.thresholds, b.thresholds)


def test_without_the_mask_the_substitutes_distort_the_curve():
    # the yardstick of the bug: 600 values at 0.05 become the first level of the curve
    p = survey()
    assert fractal.concentration_number(p.values).levels[0] == pytest.approx(0.05)


@pytest.mark.parametrize("n_measured", [0, 1, 9])
def test_too_few_detections_are_refused_with_a_sentence(n_measured):
    p = survey(n_below=500, n_measured=n_measured)
    with pytest.raises(JanjaInputError, match=rf"only {n_measured} sample\(s\) are measured and 500 are below"):
        cn(p)


def test_zero_codes_are_censored_not_a_log_error():
    p = parse_censored([0.0] * 40 + list(np.linspace(1, 50, 60)))
    res = cn(p)
    assert res.n_censored == 40 and (res.classify(p.values, p.below_detection)[:40] == 0).all()


def test_negative_codes_are_censored_not_a_log_error():
    p = parse_censored([-0.5] * 40 + list(np.linspace(1, 50, 60)))
    assert cn(p).n_censored == 40


def test_high_detection_limits_never_rank_as_anomalies():
    # '<50' (substitute 25) from an old method beside modern values of 0.1-30
    p = parse_censored(["<50"] * 5 + list(np.geomspace(0.1, 30, 200)))
    res = cn(p, n_segments=2)
    assert res.thresholds[0] < 25
    assert (res.classify(p.values, p.below_detection)[:5] == 0).all()


def test_above_detection_values_stay_on_the_curve_at_their_limit():
    p = parse_censored(list(np.geomspace(1, 100, 60)) + [">500"] * 3)
    res = cn(p)
    assert res.levels[-1] == pytest.approx(500) and res.n_censored == 0


def test_mask_of_another_length_is_refused():
    with pytest.raises(JanjaInputError, match="below-detection mask has 2 entries"):
        fractal.concentration_number(np.arange(1.0, 50.0), censored=np.zeros(2, bool))


def test_equal_measured_values_beside_non_detects_are_refused():
    p = parse_censored(["<1"] * 30 + ["5"] * 20)
    with pytest.raises(JanjaInputError, match="All 20 values are equal"):
        cn(p)


def test_missing_values_stay_unclassified():
    p = parse_censored(["<0.1", None, "NA"] + [f"{v:.3f}" for v in np.geomspace(0.2, 20, 50)])
    cls = cn(p).classify(p.values, p.below_detection)
    assert cls[:3].tolist() == [0, -1, -1]


def test_report_says_where_the_non_detects_went():
    p = survey()
    rep = HtmlReport("t")
    fractal.report_section(rep, cn(p), "Au")
    assert "600 below-detection sample(s) are left out of the curve and classed as background" in rep.html()


def test_raster_ca_is_unchanged_by_the_censoring_rules():
    band = np.geomspace(1, 100, 400).reshape(20, 20)
    a = fractal.concentration_area(band, 1.0, n_segments=2)
    b = fractal.concentration_area(band, 1.0, n_segments=2, censored=np.zeros((20, 20), bool))
    np.testing.assert_allclose(a.thresholds, b.thresholds)
    assert a.n_censored == 0
