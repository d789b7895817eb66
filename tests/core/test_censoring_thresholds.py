"""Non-detects are background: thresholds from measured values only, censored rows always class 0,
refusals (sentences) when too few values are measured or a percentile falls among the non-detects."""

import numpy as np
import pytest

from janja_plugin.core.anomaly import thresholds as th
from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics.samples import parse_censored
from janja_plugin.core.reporting.report import HtmlReport

METHODS = {
    "mean_sd": lambda v, c: th.mean_sd_thresholds(v, censored=c),
    "median_mad": lambda v, c: th.median_mad_thresholds(v, censored=c),
    "tukey": lambda v, c: th.tukey_thresholds(v, censored=c),
    "percentile": lambda v, c: th.percentile_thresholds(v, percentiles=(99,), censored=c),
}


def stream_sediment_au(n_below=699, n_measured=10, seed=0):
    """The issue's survey: most Au values '<0.1', a few measured between 0.1 and 5."""
    rng = np.random.default_rng(seed)
    raw = ["<0.1"] * n_below + [f"{v:.3f}" for v in 10 ** rng.uniform(-1, 0.7, n_measured)]
    return parse_censored(raw, column="Au")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_non_detects_are_never_anomalous(method):
    p = stream_sediment_au()
    res = METHODS[method](p.values, p.below_detection)
    cls = res.classify(p.values, p.below_detection)
    assert (cls[p.below_detection] == 0).all()
    # the thresholds come from the measured values: none is at the substituted 0.05
    assert res.thresholds.min() > 0.05


def test_without_the_mask_the_old_nonsense_is_visible():
    # the yardstick of the bug: on substituted values MAD = 0 and every sample is 'strongly anomalous'
    p = stream_sediment_au()
    res = th.median_mad_thresholds(p.values)
    assert np.allclose(res.thresholds, 0.05) and (res.classify(p.values) == 3).all()


@pytest.mark.parametrize("method", ["mean_sd", "median_mad", "tukey"])
def test_statistics_use_measured_values_only(method):
    p = stream_sediment_au(n_below=50, n_measured=60, seed=1)
    measured = p.values[~p.below_detection]
    with_mask = METHODS[method](p.values, p.below_detection).thresholds
    np.testing.assert_allclose(with_mask, METHODS[method](measured, None).thresholds, rtol=1e-12)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_too_few_measured_values_are_refused_with_a_sentence(method):
    p = stream_sediment_au(n_below=700, n_measured=9)
    with pytest.raises(JanjaInputError, match=r"only 9 sample\(s\) are measured and 700 are below detection"):
        METHODS[method](p.values, p.below_detection)


def test_a_field_with_only_non_detects_is_refused():
    p = parse_censored(["<0.5", "<1", "<0.5", "<1"] * 5)
    with pytest.raises(JanjaInputError, match="only 0 sample"):
        th.median_mad_thresholds(p.values, censored=p.below_detection)


def test_a_boundary_equal_to_the_detection_limit_keeps_non_detects_below():
    # substitution at the limit itself (factor 1): the first threshold equals the limit
    values = np.array([1.0, 1.0, 1.0, 2.0, 3.0])
    censored = np.array([True, True, True, False, False])
    assert th.classify_by_thresholds(values, [1.0], censored).tolist() == [0, 0, 0, 1, 1]
    assert th.classify_by_thresholds(values, [1.0]).tolist() == [1, 1, 1, 1, 1]


def test_a_high_detection_limit_is_still_background():
    # mixed methods: '<5' substitutes 2.5, above a threshold computed from measured 0.2-1
    p = parse_censored(["<5"] + [f"{v:.3f}" for v in np.linspace(0.2, 1.0, 40)])
    res = th.median_mad_thresholds(p.values, censored=p.below_detection)
    assert res.thresholds[0] < 2.5
    assert res.classify(p.values, p.below_detection)[0] == 0


def test_percentiles_rank_non_detects_lowest():
    p = parse_censored(["<0.1"] * 20 + [str(v) for v in range(1, 81)])
    res = th.percentile_thresholds(p.values, percentiles=(50, 90, 95), censored=p.below_detection)
    np.testing.assert_allclose(res.thresholds, np.percentile(p.values, [50, 90, 95]))


def test_a_percentile_among_the_non_detects_is_refused():
    p = parse_censored(["<0.1"] * 60 + [str(v) for v in range(1, 41)])
    with pytest.raises(JanjaInputError, match=r"P50 falls among the below-detection samples.*of at least 60.7"):
        th.percentile_thresholds(p.values, percentiles=(50, 95), censored=p.below_detection)


def test_zeros_flagged_as_censored_no_longer_block_log_methods():
    p = parse_censored([0.0] * 5 + [str(v) for v in range(1, 21)])
    res = th.mean_sd_thresholds(p.values, censored=p.below_detection)
    assert res.parameters["n"] == 20 and res.parameters["n below detection (background)"] == 5


def test_above_detection_values_count_at_their_limit_and_are_top_class():
    p = parse_censored([str(v) for v in range(1, 31)] + [">1000"])
    res = th.median_mad_thresholds(p.values, censored=p.below_detection)
    assert res.classify(p.values, p.below_detection)[-1] == 3


def test_missing_values_stay_unclassified_beside_censored_ones():
    p = parse_censored(["<0.1", None, "-9999"] + [str(v) for v in range(1, 21)])
    cls = th.median_mad_thresholds(p.values, censored=p.below_detection).classify(p.values, p.below_detection)
    assert cls[:3].tolist() == [0, -1, -1]


def test_mask_of_another_length_is_refused():
    with pytest.raises(JanjaInputError, match="below-detection mask has 3 entries but there are 20 values"):
        th.median_mad_thresholds(np.arange(1.0, 21.0), censored=np.zeros(3, bool))


def test_report_says_how_many_were_censored_and_where_they_went():
    p = stream_sediment_au(n_below=40, n_measured=60, seed=2)
    res = th.median_mad_thresholds(p.values, censored=p.below_detection)
    rep = HtmlReport("t")
    th.report_section(rep, {"median_mad": res}, "Au", p.values, p.below_detection)
    html = rep.html()
    assert "40 of the 100 samples (40.0 %) are below detection" in html
    assert "every below-detection sample is background (class 0)" in html
    assert th.censoring_note(p.values, np.zeros(100, bool)) == "None of the 100 samples is below detection."
