"""Robust Mahalanobis distance of multi-element compositions (Filzmoser, Hron & Reimann 2009).

Concentrations are parts of a whole, so they are compared as log-ratios. The clr transform
(log x minus the mean log of the sample) is the natural one to read, but its D coordinates sum to
zero, so its covariance matrix is singular and has no inverse. The pivot (ilr) coordinates are D-1
orthonormal coordinates of the same space; Mahalanobis distances are invariant to that choice of
basis, so distances in ilr coordinates equal those in clr with the pseudo-inverse, without a
singular matrix. Location and scatter come from the MCD (minimum covariance determinant), so the
anomalies we look for do not pull the background estimate towards themselves (masking).
"""

import math
from dataclasses import dataclass

import numpy as np

from .. import blas
from ..errors import JanjaInputError

CUTOFF_QUANTILE = 0.975


def clr(x):
    """Centred log-ratio of positive compositions (rows)."""
    lx = np.log(np.asarray(x, float))
    return lx - lx.mean(axis=1, keepdims=True)


def ilr_pivot(x):
    """Pivot coordinates: z_i = sqrt((D-i)/(D-i+1)) ln(x_i / geometric mean of x_{i+1..D}), i = 1..D-1."""
    lx = np.log(np.asarray(x, float))
    n, d = lx.shape
    z = np.empty((n, d - 1))
    for i in range(d - 1):
        rest = lx[:, i + 1:].mean(axis=1)
        z[:, i] = math.sqrt((d - i - 1) / (d - i)) * (lx[:, i] - rest)
    return z


def _mahalanobis_sq(z, loc, cov):
    diff = z - loc
    return np.einsum("ij,ij->i", blas.matmul(diff, np.linalg.inv(cov)), diff)  # core/blas.py: fast in QGIS


def _c_steps(z, subset, h, max_steps):
    """Concentration steps: refit on the h points closest to the current fit; the determinant never grows."""
    for _ in range(max_steps):
        loc = z[subset].mean(axis=0)
        cov = np.cov(z[subset], rowvar=False)
        det = np.linalg.det(cov)
        if not det > 0:
            return math.inf, loc, cov, subset
        new_subset = np.sort(np.argpartition(_mahalanobis_sq(z, loc, cov), h - 1)[:h])
        if np.array_equal(new_subset, subset):
            break
        subset = new_subset
    return det, loc, cov, subset


def fast_mcd(z, alpha=0.75, n_starts=200, n_best=10, seed=42, max_fit=5000):
    """Reweighted MCD location and scatter (Rousseeuw & Van Driessen 1999, simplified).

    Random (p+1)-subsets, two C-steps each; the `n_best` lowest determinants are iterated to
    convergence. h = alpha·n points (alpha 0.75: resists up to 25 % outliers with good efficiency).
    The raw estimate is made consistent for normal data and then reweighted once with the 97.5 %
    chi-square cutoff. Above `max_fit` rows a random subsample is used for the search only.
    Returns (location, covariance, raw support mask over all rows).
    """
    from scipy.stats import chi2  # here, not at module level: scipy.stats costs ~0.3 s at plugin load

    z = np.asarray(z, float)
    n, p = z.shape
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(n, max_fit, replace=False)) if n > max_fit else np.arange(n)
    zf = z[fit_rows]
    nf = zf.shape[0]
    h = max(int(math.floor(alpha * nf)), (nf + p + 1) // 2)
    trials = []
    for _ in range(n_starts):
        start = rng.choice(nf, p + 1, replace=False)
        cov = np.cov(zf[start], rowvar=False)
        while not np.linalg.det(cov) > 0 and start.size < nf:  # degenerate start: add points (as FastMCD does)
            start = np.append(start, rng.choice(np.setdiff1d(np.arange(nf), start)))
            cov = np.cov(zf[start], rowvar=False)
        d2 = _mahalanobis_sq(zf, zf[start].mean(axis=0), cov + 1e-12 * np.eye(p))
        subset = np.sort(np.argpartition(d2, h - 1)[:h])
        trials.append(_c_steps(zf, subset, h, 2))
    trials.sort(key=lambda t: t[0])
    best = min((_c_steps(zf, t[3], h, 100) for t in trials[:n_best]), key=lambda t: t[0])
    if not math.isfinite(best[0]):
        raise JanjaInputError(
            "The robust covariance is singular: more than a quarter of the samples share identical log-ratios "
            "(for example the same substituted below-detection value in two elements). Leave out an element "
            "that is mostly below detection."
        )
    _, loc, cov, _ = best
    d2 = _mahalanobis_sq(z, loc, cov)
    cov = cov * np.median(d2) / chi2.ppf(0.5, p)  # consistency at the normal model
    d2 = _mahalanobis_sq(z, loc, cov)
    support = d2 <= chi2.ppf(CUTOFF_QUANTILE, p)
    loc = z[support].mean(axis=0)
    cov = np.cov(z[support], rowvar=False)
    q = support.mean()
    cov = cov * q / chi2.cdf(chi2.ppf(q, p), p + 2)  # consistency of the reweighted estimate
    return loc, cov, support


@dataclass
class RobustDistance:
    distances: np.ndarray  # robust Mahalanobis distance per row (NaN where a part is missing or <= 0)
    cutoff: float  # sqrt of the chi-square 97.5 % quantile with D-1 degrees of freedom
    outliers: np.ndarray  # distances > cutoff
    location: np.ndarray  # MCD location in pivot coordinates
    covariance: np.ndarray  # MCD scatter in pivot coordinates
    classical_distances: np.ndarray  # with the mean and covariance, for comparison (masking shows here)
    elements: list
    n_used: int
    n_left_out: int


def robust_mahalanobis(concentrations, elements=None, alpha=0.75, seed=42, robust=True):
    """Robust Mahalanobis distance of each sample/cell (rows) from the background composition.

    Rows with a missing, zero or negative part get NaN (substitute below-detection values first).
    """
    from scipy.stats import chi2

    x = np.asarray(concentrations, float)
    if x.ndim != 2 or x.shape[1] < 3:
        raise JanjaInputError(
            "The multivariate distance needs at least three elements (two log-ratio coordinates); "
            f"got {x.shape[1] if x.ndim == 2 else 1}."
        )
    elements = list(elements) if elements is not None else [f"element {i + 1}" for i in range(x.shape[1])]
    ok = np.all(np.isfinite(x) & (x > 0), axis=1)
    p = x.shape[1] - 1
    if ok.sum() < 5 * (p + 1):
        raise JanjaInputError(
            f"Only {int(ok.sum())} of the {x.shape[0]} rows have a positive value for every element "
            f"({', '.join(elements)}); at least {5 * (p + 1)} are needed. Substitute censored values first, "
            "or leave out the element with the most missing values."
        )
    z = ilr_pivot(x[ok])
    cmean, ccov = z.mean(axis=0), np.cov(z, rowvar=False)
    eig = np.linalg.eigvalsh(np.atleast_2d(ccov))
    if not eig.min() > 1e-12 * max(eig.max(), 1e-300):
        raise JanjaInputError(
            f"The log-ratios of {', '.join(elements)} are linearly dependent (for example one element is a "
            "constant multiple of another, so their ratio never varies): the multivariate distance is undefined. "
            "Leave out one of the proportional elements."
        )
    loc, cov = (fast_mcd(z, alpha=alpha, seed=seed)[:2]) if robust else (cmean, ccov)
    dist = np.full(x.shape[0], np.nan)
    dist[ok] = np.sqrt(_mahalanobis_sq(z, loc, cov))
    classical = np.full(x.shape[0], np.nan)
    classical[ok] = np.sqrt(_mahalanobis_sq(z, cmean, ccov))
    cutoff = math.sqrt(chi2.ppf(CUTOFF_QUANTILE, p))
    with np.errstate(invalid="ignore"):
        outliers = dist > cutoff
    return RobustDistance(dist, cutoff, outliers, loc, cov, classical, elements, int(ok.sum()), int((~ok).sum()))


REPORT_TITLE = "Robust multivariate anomaly score (MCD distance on clr/ilr log-ratios)"


def report_section(report, result):
    """Distance summary and a robust-vs-classical distance plot (the masking check). No heading of its own:
    the report's title (REPORT_TITLE) names it once."""
    from ..reporting.svgplot import chart

    report.paragraph(
        f"Elements: {', '.join(result.elements)}. {result.n_used} rows used, {result.n_left_out} left out "
        f"(a missing or non-positive part). Cutoff sqrt(chi2 0.975, {len(result.elements) - 1} df) = "
        f"{result.cutoff:.3g}: {int(np.nansum(result.outliers))} rows above it."
    )
    report.charts([chart([
        {"x": result.classical_distances, "y": result.distances, "label": "rows"},
        {"x": [0, np.nanmax(result.classical_distances)], "y": [result.cutoff, result.cutoff], "style": "line",
         "label": "robust cutoff"},
    ], title="Robust vs classical Mahalanobis distance", xlabel="classical distance", ylabel="robust distance")])
