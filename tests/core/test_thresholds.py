"""Conventional thresholds: each method against its textbook formula, classes, refusals."""

import numpy as np
import pytest

from janja_plugin.core.anomaly import thresholds as th
from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.reporting.report import HtmlReport


@pytest.fixture
def lognormal():
    return 10 ** np.random.default_rng(3).normal(1.0, 0.3, 2000)


def test_mean_sd_is_back_transformed_log_statistics(lognormal):
    res = th.mean_sd_thresholds(lognormal)
    lg = np.log10(lognormal)
    expected = 10 ** (lg.mean() + np.array([1, 2, 3]) * lg.std(ddof=1))
    np.testing.assert_allclose(res.thresholds, expected, rtol=1e-12)
    assert res.labels == ["background", "possibly anomalous", "anomalous", "strongly anomalous"]
    assert res.threshold_names[1] == "mean + 2 SD"


def test_median_mad_by_hand():
    v = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    res = th.median_mad_thresholds(v, k=(2,), log10=False)
    # median 3, |v - 3| = 2 1 0 1 97 -> MAD 1, scaled 1.4826
    assert res.thresholds[0] == pytest.approx(3 + 2 * 1.4826)


def test_tukey_fence_by_hand():
    v = np.arange(1.0, 10.0)  # Q1 3, Q3 7, IQR 4
    res = th.tukey_thresholds(v, fences=(1.5, 3.0), log10=False)
    np.testing.assert_allclose(res.thresholds, [13.0, 19.0])


def test_percentiles_match_numpy(lognormal):
    res = th.percentile_thresholds(lognormal)
    np.testing.assert_allclose(res.thresholds, np.percentile(lognormal, [75, 90, 95, 98]))
    assert len(res.labels) == 5


def test_robust_threshold_resists_the_anomalies_it_looks_for(lognormal):
    v = np.concatenate([lognormal, np.full(100, 1e4)])  # 5 % strong anomalies
    assert th.median_mad_thresholds(v).thresholds[1] < th.mean_sd_thresholds(v).thresholds[1] / 3


def test_classify_edges_and_nan():
    res = th.percentile_thresholds(np.arange(1.0, 101.0), percentiles=(50, 90))
    t = res.thresholds
    cls = res.classify(np.array([0.5, t[0], (t[0] + t[1]) / 2, t[1], 1e9, np.nan]))
    assert cls.tolist() == [0, 1, 1, 2, 2, -1]
    grid = res.classify(np.arange(1.0, 101.0).reshape(10, 10))
    assert grid.shape == (10, 10)


def test_log_methods_refuse_non_positive_values_with_advice():
    with pytest.raises(JanjaInputError, match="Substitute censored values"):
        th.mean_sd_thresholds([1.0, 2.0, 0.0, 5.0])
    with pytest.raises(JanjaInputError, match="zero or negative"):
        th.tukey_thresholds([1.0, 2.0, -0.001, 5.0])
    assert th.mean_sd_thresholds([1.0, 2.0, -1.0, 5.0], log10=False).thresholds.size == 3


def test_too_few_values_and_bad_percentiles():
    with pytest.raises(JanjaInputError, match="at least 3"):
        th.median_mad_thresholds([1.0, np.nan, 2.0])
    with pytest.raises(JanjaInputError, match="between 0 and 100"):
        th.percentile_thresholds([1.0, 2.0, 3.0], percentiles=(50, 100))


def test_nan_ignored(lognormal):
    v = np.concatenate([lognormal, [np.nan, np.nan]])
    np.testing.assert_allclose(th.mean_sd_thresholds(v).thresholds, th.mean_sd_thresholds(lognormal).thresholds)


def test_report_section(lognormal):
    rep = HtmlReport("t")
    th.report_section(rep, th.all_thresholds(lognormal), "Au_ppb", lognormal)
    html = rep.html()
    assert "mean + 2 SD" in html and "Q3 + 1.5 IQR" in html and "<svg" in html
