"""Robust Mahalanobis distance on log-ratio coordinates, checked on planted outliers and clean data."""

import numpy as np
import pytest
from scipy.stats import chi2

from janja_plugin.core.anomaly import multivariate as mv
from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.reporting.report import HtmlReport

COV = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.2], [0.3, 0.2, 1.0]])


def compositions(z):
    """Positive 4-part compositions whose pivot-like log-ratios are z (last part is the reference)."""
    return np.exp(np.column_stack([z, np.zeros(len(z))])) * 37.0


def test_ilr_distance_equals_clr_pseudo_inverse_distance():
    x = compositions(np.random.default_rng(0).multivariate_normal([0, 0, 0], COV, 300))
    z, c = mv.ilr_pivot(x), mv.clr(x)
    assert np.allclose(c.sum(axis=1), 0.0)
    dz = z - z.mean(axis=0)
    d_ilr = np.einsum("ij,ij->i", dz @ np.linalg.inv(np.cov(z, rowvar=False)), dz)
    dc = c - c.mean(axis=0)
    d_clr = np.einsum("ij,ij->i", dc @ np.linalg.pinv(np.cov(c, rowvar=False)), dc)
    np.testing.assert_allclose(d_ilr, d_clr, rtol=1e-8)
    # scale invariance: closing the composition changes nothing
    np.testing.assert_allclose(mv.ilr_pivot(x / x.sum(axis=1, keepdims=True)), z, atol=1e-12)


def test_planted_outliers_rank_top_where_the_classical_distance_is_masked():
    rng = np.random.default_rng(1)
    z = rng.multivariate_normal([0, 0, 0], COV, 1000)
    z[:100] = rng.multivariate_normal([2.5, -2.5, 1.0], 0.01 * np.eye(3), 100)  # a tight 10 % cluster
    res = mv.robust_mahalanobis(compositions(z))
    assert set(np.argsort(-res.distances)[:100]) == set(range(100))
    assert res.outliers[:100].all() and res.outliers[100:].mean() < 0.05
    assert np.mean(res.classical_distances[:100] > res.cutoff) < 0.5  # masking: the mean and covariance moved


def test_clean_data_mcd_agrees_with_the_classical_estimate():
    x = compositions(np.random.default_rng(2).multivariate_normal([0.5, -0.3, 1.0], COV, 2000))
    res = mv.robust_mahalanobis(x)
    z = mv.ilr_pivot(x)
    np.testing.assert_allclose(res.location, z.mean(axis=0), atol=0.08)
    np.testing.assert_allclose(res.covariance, np.cov(z, rowvar=False), atol=0.12)
    assert np.corrcoef(res.distances, res.classical_distances)[0, 1] > 0.99
    assert res.cutoff == pytest.approx(np.sqrt(chi2.ppf(0.975, 3)))
    assert res.outliers.mean() == pytest.approx(0.025, abs=0.015)


def test_missing_or_non_positive_rows_get_nan_and_input_is_checked():
    x = compositions(np.random.default_rng(3).multivariate_normal([0, 0, 0], COV, 200))
    x[0, 1] = np.nan
    x[1, 2] = 0.0
    res = mv.robust_mahalanobis(x, ["Au", "Ag", "Cu", "Pb"])
    assert np.isnan(res.distances[:2]).all() and np.isfinite(res.distances[2:]).all()
    assert res.n_used == 198 and res.n_left_out == 2
    with pytest.raises(JanjaInputError, match="at least three elements"):
        mv.robust_mahalanobis(x[:, :2])
    with pytest.raises(JanjaInputError, match="Substitute censored values"):
        mv.robust_mahalanobis(x[:12])


def test_seeded_and_reproducible():
    x = compositions(np.random.default_rng(4).multivariate_normal([0, 0, 0], COV, 500))
    a, b = mv.robust_mahalanobis(x), mv.robust_mahalanobis(x)
    np.testing.assert_array_equal(a.distances, b.distances)


def test_report_section():
    x = compositions(np.random.default_rng(5).multivariate_normal([0, 0, 0], COV, 300))
    rep = HtmlReport("t")
    mv.report_section(rep, mv.robust_mahalanobis(x, ["Au", "Ag", "Cu", "Pb"]))
    assert "<svg" in rep.html() and "Au, Ag, Cu, Pb" in rep.html()
