"""Ordinary kriging of scattered samples: global or local neighbourhood, lognormal OK, leave-one-out.

Everything is in the variogram form of the ordinary kriging system (it also works for the unbounded
linear and power models), for one target with neighbours 1..k:

    sum_j lambda_j gamma(x_i - x_j) + mu = gamma(x_i - x0)   (i = 1..k),   sum_j lambda_j = 1
    prediction = sum_j lambda_j z_j,   variance = sum_j lambda_j gamma(x_j - x0) + mu

which is gstat's OK prediction and OK variance (gamma(0) = 0, so kriging is exact at the samples
and the variance there is 0, nugget or not). `mu` is the Lagrange multiplier of this form; the
covariance form's multiplier is -mu.

Local neighbourhoods: each target uses its k nearest samples (anisotropic distance), optionally only
those within a search radius. Neighbouring grid cells very often have the same neighbour set, so the
targets are grouped by their (sorted) neighbour set and each distinct system is factorised once and
solved for all its targets at once; distinct systems are solved in stacked numpy batches, in chunks
of targets to bound memory. Bounded models are solved in the covariance form by one Cholesky
factorisation per set (C = sill - gamma is positive definite; the unbiasedness constraint enters
as a rank-one correction, see _batch_cholesky), about twice as fast as LU of the bordered
variogram-form system, which remains for unbounded models, sets shared by many targets, and nearly
singular sets. The result is the plain definition (each target kriged from its own k nearest
samples); tests check this to 1e-9 against a textbook LU loop.
"""

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .. import blas
from ..errors import JanjaInputError
from .variogram import VariogramModel, _check_points

CHUNK_TARGETS = 32_768  # targets per neighbour query / progress step (local)
BATCH_DOUBLES = 300_000  # about 2.4 MB per stacked array: cache-sized batches, small peak memory
CHOLESKY_BATCH_DOUBLES = 160_000  # bordered Cholesky batches: about 120 systems (measured best)
KNN_TARGETS = 4096  # targets per candidate block of the neighbour search (cache-sized arrays)
KNN_BIN = 0.35  # bin side / typical k-th neighbour distance
KNN_CANDIDATES = 2.5  # candidates per bin / k
GLOBAL_BATCH_DOUBLES = 4_000_000  # right-hand sides per global solve: about 32 MB
MAX_WEIGHT_SUM = 1e6  # sum |lambda| above this means a (numerically) singular system
CHOLESKY_MAX_WIDTH = 16  # sets shared by more targets than this are solved by LU (measured)
CHOLESKY_MIN_PIVOT = 1e-9  # Cholesky pivot^2 / sill below this: C is (nearly) singular, use LU
CHOLESKY_MAX_CORRELATION = 0.9  # mean neighbour covariance / sill above this: use LU (accuracy)


class KrigingCancelled(Exception):  # noqa: N818 - the name the callers use
    """The user cancelled the kriging run through the progress callback."""


@dataclass
class KrigingResult:
    """Per target: prediction, OK variance, Lagrange multiplier mu (variogram form, see module doc).

    Targets with too few neighbours inside the search radius are NaN and counted in `n_missing`.
    `n_systems` is the number of distinct kriging systems that were factorised.
    """

    prediction: np.ndarray
    variance: np.ndarray
    lagrange: np.ndarray
    n_missing: int = 0
    n_systems: int = 0


@dataclass
class LognormalResult:
    """Lognormal OK: `prediction` in the data's units; the log-scale kriging output beside it.

    No original-unit variance is given: the log-scale variance is the one to map and interpret.
    """

    prediction: np.ndarray
    log_prediction: np.ndarray
    log_variance: np.ndarray
    lagrange: np.ndarray
    n_missing: int = 0
    n_systems: int = 0


@dataclass
class CrossValidation:
    """Leave-one-out results per sample, as gstat's krige.cv (residual = observed - predicted)."""

    x: np.ndarray
    y: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray
    variance: np.ndarray
    residual: np.ndarray = field(init=False)
    zscore: np.ndarray = field(init=False)

    def __post_init__(self):
        self.residual = self.observed - self.predicted
        with np.errstate(divide="ignore", invalid="ignore"):
            self.zscore = self.residual / np.sqrt(self.variance)

    def summary(self) -> dict:
        """Mean error, RMSE and mean squared standardised error (about 1 when the variance is right)."""
        ok = np.isfinite(self.residual)
        r, zs = self.residual[ok], self.zscore[ok]
        return {
            "n": int(ok.sum()),
            "mean_error": float(np.mean(r)) if r.size else float("nan"),
            "rmse": float(np.sqrt(np.mean(r * r))) if r.size else float("nan"),
            "mean_squared_zscore": float(np.mean(zs * zs)) if r.size else float("nan"),
        }


# --------------------------------------------------------------------------------------------------
# input checks and shared pieces


def _targets(xt, yt):
    xt = np.asarray(xt, dtype=float).ravel()
    yt = np.asarray(yt, dtype=float).ravel()
    if xt.size != yt.size:
        raise JanjaInputError("The target x and y coordinates must have the same length.")
    if not (np.isfinite(xt).all() and np.isfinite(yt).all()):
        raise JanjaInputError("Some target locations have missing or non-finite coordinates.")
    return xt, yt


def _check_duplicates(tx, ty, x, y):
    """Samples at the same place make the kriging system singular: name them instead."""
    from scipy.spatial import cKDTree

    extent = max(np.ptp(tx), np.ptp(ty), 1e-300)
    pairs = cKDTree(np.column_stack([tx, ty])).query_pairs(r=1e-9 * extent, output_type="ndarray")
    if len(pairs):
        i, j = (int(v) for v in pairs[0])
        raise JanjaInputError(
            f"{len(pairs)} pair(s) of samples are at the same place, e.g. samples {i} and {j} at "
            f"({x[i]:.3f}, {y[i]:.3f}). The kriging system is singular with duplicates: merge them first "
            "(average the values of samples at one location)."
        )


def _scale(model: VariogramModel, tx, ty) -> float:
    """A semivariance scale so the system matrix has entries of order 1 (weights do not change)."""
    s = float(model(np.hypot(np.ptp(tx), np.ptp(ty))))
    return s if s > 0 else 1.0


def _dist(ax, ay, bx, by):
    """Euclidean distance with broadcasting (np.hypot is several times slower here)."""
    dx = ax - bx
    dy = ay - by
    dx *= dx
    dy *= dy
    dx += dy
    return np.sqrt(dx, out=dx)


def _singular_error(where: str) -> JanjaInputError:
    return JanjaInputError(
        f"The kriging system is (numerically) singular {where}. This happens with samples at (almost) "
        "the same place or with a Gaussian model without nugget. Merge near-duplicate samples, or add "
        "a small nugget to the variogram model."
    )


def _report(progress, fraction):
    if progress is not None and progress(float(min(max(fraction, 0.0), 1.0))):
        raise KrigingCancelled("Kriging was cancelled.")


# --------------------------------------------------------------------------------------------------
# global neighbourhood: one factorisation for all targets


def _global_system(tx, ty, model, s):
    from scipy.linalg import lapack, lu_factor

    n = tx.size
    a = np.ones((n + 1, n + 1))
    a[:n, :n] = model(_dist(tx[:, None], ty[:, None], tx[None, :], ty[None, :])) / s
    a[n, n] = 0.0
    anorm = np.abs(a).sum(axis=0).max()
    lu, piv = lu_factor(a, check_finite=False)
    rcond, info = lapack.dgecon(lu, anorm, norm="1")
    if info != 0 or not rcond > 1e-13:
        raise _singular_error(f"for the {n} samples (reciprocal condition number {rcond:.1e})")
    return lu, piv


def _krige_global(tx, ty, z, qx, qy, model, s, progress):
    from scipy.linalg import lu_solve

    n = tx.size
    lu_piv = _global_system(tx, ty, model, s)
    m = qx.size
    pred, var, mu = np.empty(m), np.empty(m), np.empty(m)
    step = max(1, GLOBAL_BATCH_DOUBLES // (n + 1))
    for start in range(0, m, step):
        sl = slice(start, min(start + step, m))
        b = np.ones((n + 1, sl.stop - sl.start))
        b[:n] = model(_dist(tx[:, None], ty[:, None], qx[None, sl], qy[None, sl])) / s
        w = lu_solve(lu_piv, b, check_finite=False)
        pred[sl] = blas.matmul(z, w[:n])  # not numpy's @: GSL's reference CBLAS inside QGIS (core/blas.py)
        var[sl] = s * (np.einsum("ij,ij->j", w[:n], b[:n]) + w[n])
        mu[sl] = s * w[n]
        _report(progress, sl.stop / m)
    return KrigingResult(pred, var, mu, 0, 1)


# --------------------------------------------------------------------------------------------------
# local neighbourhood: grouped and batched


def _group_rows(rows):
    """Group rows holding the same neighbour set in any order: (one representative row per set, set id).

    The key is a sum of random 64-bit numbers per sample index (order-independent, so no sorting); a
    second independent key is compared within each group and any mismatch gets its own group, so two
    different sets share a group only if both 64-bit keys collide (probability about 2^-128).
    """
    n_max = int(rows.max()) + 1
    rng = np.random.default_rng(20240617)
    r1 = rng.integers(0, 2**63 - 1, size=n_max, dtype=np.int64).view(np.uint64)
    r2 = rng.integers(0, 2**63 - 1, size=n_max, dtype=np.int64).view(np.uint64)
    key1 = r1[rows].sum(axis=1, dtype=np.uint64)  # wraps modulo 2^64
    key2 = r2[rows].sum(axis=1, dtype=np.uint64)
    _, first, inverse = np.unique(key1, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    clash = np.flatnonzero(key2 != key2[first[inverse]])
    if clash.size:
        inverse[clash] = first.size + np.arange(clash.size)
        first = np.concatenate([first, clash])
    return rows[first], inverse


def _system_matrices(model, s, px, py):
    """Stacked (g, c+1, c+1) variogram-form OK matrices for neighbour coordinates px, py (g, c)."""
    g, c = px.shape
    a = np.empty((g, c + 1, c + 1))
    h = px[:, :, None] - px[:, None, :]
    h *= h
    dy = py[:, :, None] - py[:, None, :]
    dy *= dy
    h += dy
    np.sqrt(h, out=h)
    a[:, :c, :c] = model(h)
    if s != 1.0:
        a[:, :c, :c] /= s
    a[:, c, :c] = 1.0
    a[:, :c, c] = 1.0
    a[:, c, c] = 0.0
    return a


_OWN_FORMULA = ("spherical", "exponential", "gaussian")


def _covariance_from_squared(model, s, d2):
    """Covariance (sill - gamma(h)) / s for h > 0 from squared distances d2 (overwritten).

    For the models in _OWN_FORMULA d2 must be in units of the range (coordinates divided by it);
    their formulas are written out with in-place operations: on ~1e9 matrix entries per run this is
    several times cheaper than sill - model(h), which makes about ten temporaries.
    """
    p = model.psill / s
    if model.model == "gaussian":
        d2 *= -1.0
        np.exp(d2, out=d2)
        d2 *= p
        return d2
    h = np.sqrt(d2, out=d2)
    if model.model == "spherical":  # p (1 - 1.5 r + 0.5 r^3) for r = h / range < 1, else 0
        np.minimum(h, 1.0, out=h)
        t = h * h
        t *= 0.5 * p
        t -= 1.5 * p
        t *= h
        t += p
        return t
    if model.model == "exponential":
        h *= -1.0
        np.exp(h, out=h)
        h *= p
        return h
    return (model.sill - model(h)) / s


def _batch_lu(model, s, px, py, zr, tqx, tqy, cl, cr, width):
    """Variogram-form OK by LU for a batch of sets: (prediction, variance, mu) of its targets.

    px, py, zr: (g, c) neighbour coordinates and values per set; target i at (tqx[i], tqy[i]) belongs
    to set cl[i] and is right-hand side cr[i] of `width` (cl, cr are None when width is 1: target i
    is set i).
    """
    g, c = px.shape
    a = _system_matrices(model, s, px, py)
    if width == 1:
        bc = model(_dist(px, py, tqx[:, None], tqy[:, None]))
    else:
        bc = model(_dist(px[cl], py[cl], tqx[:, None], tqy[:, None]))
    if s != 1.0:
        bc /= s
    if width == 1:
        rhs = np.empty((g, c + 1, 1))
        rhs[:, :c, 0] = bc
        rhs[:, c, 0] = 1.0
    else:
        rhs = np.zeros((g, c + 1, width))
        rhs[cl, :c, cr] = bc
        rhs[cl, c, cr] = 1.0
    try:
        w = np.linalg.solve(a, rhs)
    except np.linalg.LinAlgError:
        raise _singular_error("for at least one target's neighbour set") from None
    wc = w[:, :, 0] if width == 1 else w[cl, :, cr]
    lam = wc[:, :c]
    bad = ~np.isfinite(wc).all(axis=1) | (np.abs(lam).sum(axis=1) > MAX_WEIGHT_SUM)
    if bad.any():
        raise _singular_error("for at least one target's neighbour set (its kriging weights explode)")
    zc = zr if width == 1 else zr[cl]
    return np.einsum("ij,ij->i", lam, zc), s * (np.einsum("ij,ij->i", lam, bc) + wc[:, c]), s * wc[:, c]


@lru_cache(maxsize=16)
def _packing(c, n):
    """Row and column indices of the strict lower triangle of c x c, and their flat offsets in n x n."""
    il, jl = np.tril_indices(c, -1)
    return il, jl, il * n + jl


def _batch_cholesky(model, s, px, py, zr, tqx, tqy, cl, cr, width):
    """As _batch_lu, by Cholesky of the covariance matrix C (bounded models); None if C is not safely
    positive definite (the caller then uses LU, which also reports singular systems).

    With sum(lambda) = 1 the OK weights are lambda = C^-1 (c0 - m 1), m = (1'C^-1 c0 - 1) / (1'C^-1 1),
    and the variance is sill - lambda'c0 - m (m = -mu). With C = L L' only the dot products of
    u = L^-1 c0, v = L^-1 1 and q = L^-1 z enter: prediction = q'u - m q'v, 1'C^-1 c0 = v'u, ... So the
    border rows B' = [c0 (one row per target); 1; z] are put under C, and one batched Cholesky of
    [[C, B], [B', big I]] yields u, v, q as its last rows (the forward substitutions come out of the
    factorisation; `big` keeps the trailing block positive). Only lower triangles are filled (all the
    factorisation reads), so C's entries are computed once per pair. zr must be centred (prediction
    = mean + result) so that 1'lambda = 1 is not leaned on.
    """
    g, c = px.shape
    n = c + width + 2
    n += n % 2  # even sizes factorise noticeably faster (alignment); the extra row stays zero
    il, jl, flat_lower = _packing(c, n)
    pxc, pyc = (px, py) if width == 1 else (px[cl], py[cl])
    at_sample = (pxc == tqx[:, None]) & (pyc == tqy[:, None])  # h = 0: the nugget is part of c0 there
    if model.model in _OWN_FORMULA:  # distances in units of the range
        f = 1.0 / model.range
        px, py, tqx, tqy = px * f, py * f, tqx * f, tqy * f
    d2 = px[:, il] - px[:, jl]
    d2 *= d2
    dy = py[:, il] - py[:, jl]
    dy *= dy
    d2 += dy
    a = np.empty((g, n, n))
    flat = a.reshape(g, n * n)
    cov = _covariance_from_squared(model, s, d2)
    if cov.size and cov.mean() > CHOLESKY_MAX_CORRELATION * model.sill / s:  # one neighbour: no pair
        return None  # range >> neighbourhood: C ~ sill 11' loses the digits that matter; LU keeps them
    flat[:, flat_lower] = cov
    a[:, c:, :] = 0.0
    diag = flat[:, ::n + 1]
    diag[:, :c] = model.sill / s  # h = 0: the nugget is part of C there
    diag[:, c:] = 1e100
    d2 = (px if width == 1 else px[cl]) - tqx[:, None]
    d2 *= d2
    dy = (py if width == 1 else py[cl]) - tqy[:, None]
    dy *= dy
    d2 += dy
    c0 = _covariance_from_squared(model, s, d2)
    if at_sample.any():
        c0[at_sample] = model.sill / s
    if width == 1:
        a[:, c, :c] = c0
    else:
        a[cl, c + cr, :c] = c0
    a[:, c + width, :c] = 1.0
    a[:, c + width + 1, :c] = zr
    try:
        lf = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return None
    if not (lf.reshape(g, n * n)[:, :c * (n + 1):n + 1].min() ** 2 > CHOLESKY_MIN_PIVOT * model.sill / s):
        return None  # a (nearly) singular C: leave it to LU and its checks
    if width == 1:
        u, v, q = lf[:, c, :c], lf[:, c + 1, :c], lf[:, c + 2, :c]
    else:
        u, v, q = lf[cl, c + cr, :c], lf[cl, c + width, :c], lf[cl, c + width + 1, :c]
    uu, vu, vv = np.einsum("ij,ij->i", u, u), np.einsum("ij,ij->i", v, u), np.einsum("ij,ij->i", v, v)
    qu, qv = np.einsum("ij,ij->i", q, u), np.einsum("ij,ij->i", q, v)
    m = (vu - 1.0) / vv
    pred, var, mu = qu - m * qv, model.sill - s * (uu - m * vu + m), -s * m
    if not (np.isfinite(pred).all() and np.isfinite(var).all()):
        return None
    return pred, var, mu


def _solve_sets(tx, ty, z, model, s, sets, gid, qx, qy):
    """Krige targets (qx, qy) whose neighbour set is sets[gid]: one factorisation per distinct set.

    Sets are solved in stacked batches; a set shared by several targets gets all their right-hand
    sides at once (batches are formed per power-of-two class of targets per set, zero-padded).
    Bounded models use the Cholesky form (_batch_cholesky) for sets with few targets, else LU.
    """
    g_total, c = sets.shape
    m = qx.size
    pred, var, mu = np.empty(m), np.empty(m), np.empty(m)
    zmean = float(np.mean(z))
    zc = z - zmean
    sizes = np.bincount(gid, minlength=g_total)
    size_class = np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64)  # RHS columns: 2^class
    gorder = np.argsort(size_class, kind="stable")  # groups of one class become contiguous
    relabel = np.empty(g_total, dtype=np.int64)
    relabel[gorder] = np.arange(g_total)
    sets, sizes, size_class, gid = sets[gorder], sizes[gorder], size_class[gorder], relabel[gid]
    order = np.argsort(gid, kind="stable")  # targets sorted by group
    gstart = np.concatenate([[0], np.cumsum(sizes)])
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m) - np.repeat(gstart[:-1], sizes)
    cls_start = np.searchsorted(size_class, np.arange(size_class[-1] + 2))
    for cls in range(size_class[-1] + 1):
        width = 2**cls
        chol = model.bounded and width <= CHOLESKY_MAX_WIDTH
        per_batch = max(1, (CHOLESKY_BATCH_DOUBLES // (c + width + 3)**2 if chol else
                            BATCH_DOUBLES // ((c + 1) * (c + 1 + width))))
        for g0 in range(cls_start[cls], cls_start[cls + 1], per_batch):
            g1 = min(g0 + per_batch, cls_start[cls + 1])
            cells = order[gstart[g0]:gstart[g1]]
            rows = sets[g0:g1]
            px, py = tx[rows], ty[rows]
            cl, cr = (None, None) if width == 1 else (gid[cells] - g0, rank[cells])
            out = None
            if chol:
                out = _batch_cholesky(model, s, px, py, zc[rows], qx[cells], qy[cells], cl, cr, width)
                if out is not None:
                    out[0].__iadd__(zmean)
            if out is None:
                out = _batch_lu(model, s, px, py, z[rows], qx[cells], qy[cells], cl, cr, width)
            pred[cells], var[cells], mu[cells] = out
    return pred, var, mu


def _solve_neighbours(tx, ty, z, model, s, idx, qx, qy, min_neighbours, group):
    """Krige targets from neighbour lists idx (m, k) in distance order, padded with n at the end."""
    n = tx.size
    m = qx.size
    pred, var, mu = np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan)
    cnt = (idx < n).sum(axis=1)
    ok = cnt >= max(min_neighbours, 1)
    n_systems = 0
    for c in np.unique(cnt[ok]):
        sel = np.flatnonzero(ok & (cnt == c))
        rows = idx[sel, :c]
        if group:
            sets, gid = _group_rows(rows)
        else:
            sets, gid = rows, np.arange(sel.size)
        n_systems += sets.shape[0]
        pred[sel], var[sel], mu[sel] = _solve_sets(tx, ty, z, model, s, sets, gid, qx[sel], qy[sel])
    return pred, var, mu, int((~ok).sum()), n_systems


def _k_nearest(tree, tx, ty, qx, qy, k):
    """Indices (m, k) of the k nearest samples of each target, in no particular order.

    As tree.query(k) but about twice as fast for many targets: targets are binned in squares of about
    a third of the typical k-th neighbour distance; a bin's candidates are the KNN_CANDIDATES * k
    nearest samples of its centre, at most R from it. A target at distance e from the centre whose
    k-th nearest candidate is closer than R - e has its exact k nearest among them (any other sample
    is at least R - e away). The few other targets, and those with a (near) tie for the k-th place,
    are queried from the tree, so the neighbour sets are the tree's, ties included.
    """
    m, n = qx.size, tx.size
    kc = min(int(KNN_CANDIDATES * k) + 1, n)
    if kc == n or m < 256:
        return tree.query(np.column_stack([qx, qy]), k=k, workers=1)[1].reshape(m, k)
    step = max(1, m // 64)
    typical = tree.query(np.column_stack([qx[::step], qy[::step]]), k=k, workers=1)[0].reshape(-1, k)[:, -1]
    b = KNN_BIN * float(np.median(typical))
    x0, y0 = qx.min(), qy.min()
    nx, ny = (qx.max() - x0) / b + 1, (qy.max() - y0) / b + 1
    if not (b > 0 and nx * ny < 2**62):
        return tree.query(np.column_stack([qx, qy]), k=k, workers=1)[1].reshape(m, k)
    idx = np.empty((m, k), dtype=np.int64)
    for s0 in range(0, m, KNN_TARGETS):  # sub-chunks: cache-sized candidate arrays
        bx, by = qx[s0:s0 + KNN_TARGETS], qy[s0:s0 + KNN_TARGETS]
        ix = ((bx - x0) / b).astype(np.int64)
        iy = ((by - y0) / b).astype(np.int64)
        keys, binv = np.unique(ix * int(ny) + iy, return_inverse=True)
        cx, cy = (keys // int(ny) + 0.5) * b + x0, (keys % int(ny) + 0.5) * b + y0
        dc, cand = tree.query(np.column_stack([cx, cy]), k=kc, workers=1)
        ci = cand[binv]
        d2 = tx[ci] - bx[:, None]
        d2 *= d2
        dy = ty[ci] - by[:, None]
        dy *= dy
        d2 += dy
        part = np.argpartition(d2, (k - 1, k), axis=1)
        rows = np.arange(bx.size)
        idx[s0:s0 + bx.size] = ci[rows[:, None], part[:, :k]]
        dk, dnext = d2[rows, part[:, k - 1]], d2[rows, part[:, k]]
        reach = dc[binv, -1]
        missed = ~(np.sqrt(dk) < reach - np.hypot(bx - cx[binv], by - cy[binv]) - 1e-9 * reach)
        missed |= ~(dnext > dk * (1 + 1e-12))  # a (near) tie for the k-th place: the tree decides
        if missed.any():
            sel = s0 + np.flatnonzero(missed)
            idx[sel] = tree.query(np.column_stack([qx[sel], qy[sel]]), k=k, workers=1)[1].reshape(-1, k)
    return idx


def _openblas():
    """The loaded OpenBLAS library (ctypes), or None when numpy uses another BLAS or none is found."""
    try:
        import ctypes

        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
        for path in sorted(paths):
            candidate = ctypes.CDLL(path)
            if hasattr(candidate, "openblas_set_num_threads"):
                return candidate
    except OSError:
        pass
    return None


@contextmanager
def _blas_threads_limited():
    """Yield True with OpenBLAS held to one thread (restored after), False if that is not possible.

    Our worker threads each run many tiny LAPACK solves; if OpenBLAS also starts its threads for
    them, the cores are oversubscribed and the run gets several times slower. OpenBLAS itself is asked,
    not the environment: OPENBLAS_NUM_THREADS set after it loaded (a Dask LocalCluster's nanny sets it in
    its own process) changes nothing, and one thread or several give different last bits.
    """
    lib = _openblas()
    if lib is None:
        yield os.environ.get("OPENBLAS_NUM_THREADS") == "1" or os.environ.get("OMP_NUM_THREADS") == "1"
        return
    before = lib.openblas_get_num_threads()
    if before != 1:
        lib.openblas_set_num_threads(1)
    try:
        yield True
    finally:
        if before != 1:
            lib.openblas_set_num_threads(before)


def _krige_local(tx, ty, z, qx, qy, model, s, k, radius, min_neighbours, progress, group, workers):
    """Chunks of targets: neighbour query, then grouped solves; chunks run in `workers` threads
    (numpy's and LAPACK's loops release the GIL)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([tx, ty]))
    m = qx.size
    pred, var, mu = np.empty(m), np.empty(m), np.empty(m)
    bound = np.inf if radius is None else float(radius)
    workers = max(1, int(workers or 1))
    slices = [slice(i, min(i + CHUNK_TARGETS, m)) for i in range(0, m, CHUNK_TARGETS)]

    def run(sl):
        if radius is None:
            idx = _k_nearest(tree, tx, ty, qx[sl], qy[sl], k)
        else:
            idx = tree.query(np.column_stack([qx[sl], qy[sl]]), k=k, distance_upper_bound=bound, workers=1)[1]
        return sl, _solve_neighbours(tx, ty, z, model, s, idx.reshape(-1, k), qx[sl], qy[sl],
                                     min_neighbours, group)

    missing = systems = done = 0
    with _blas_threads_limited() as limited, ThreadPoolExecutor(workers if limited else 1) as pool:
        pending = {pool.submit(run, sl) for sl in slices[:2 * workers]}
        queued = slices[2 * workers:]
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                sl, (p, v, u, miss, nsys) = fut.result()
                pred[sl], var[sl], mu[sl] = p, v, u
                missing += miss
                systems += nsys
                done += sl.stop - sl.start
            try:
                _report(progress, done / m)
            except KrigingCancelled:
                for fut in pending:
                    fut.cancel()
                raise
            while queued and len(pending) < 2 * workers:
                pending.add(pool.submit(run, queued.pop(0)))
    return KrigingResult(pred, var, mu, missing, systems)


# --------------------------------------------------------------------------------------------------
# public API


def ordinary_kriging(x, y, z, xt, yt, model: VariogramModel, neighbours: int | None = None,
                     search_radius: float | None = None, min_neighbours: int = 1, progress=None,
                     group: bool = True, workers: int | None = None) -> KrigingResult:
    """Ordinary kriging of samples (x, y, z) at targets (xt, yt), all coordinates in metres.

    neighbours=None (or >= number of samples without a radius) is the global neighbourhood: one
    factorisation of the (n+1)x(n+1) system for all targets. Otherwise each target uses its
    `neighbours` nearest samples, only those within `search_radius` if given; targets with fewer than
    `min_neighbours` there get NaN (counted in n_missing). progress(fraction) -> True cancels
    (KrigingCancelled). group=False solves every target's system separately (the plain definition).
    workers: threads for the local case (default: the number of CPUs, at most 8; one thread when
    OpenBLAS's own threading cannot be held to one thread meanwhile).
    """
    x, y, z = _check_points(x, y, z)
    xt, yt = _targets(xt, yt)
    tx, ty = model.transform(x, y)
    qx, qy = model.transform(xt, yt)
    _check_duplicates(tx, ty, x, y)
    s = _scale(model, tx, ty)
    if neighbours is not None and neighbours < 1:
        raise JanjaInputError(f"The number of neighbours must be at least 1 (got {neighbours}); use "
                              "'global' (all samples) instead of 0.")
    if search_radius is not None and not search_radius > 0:
        raise JanjaInputError(f"The search radius must be > 0 metres (got {search_radius}).")
    if (neighbours is None or neighbours >= x.size) and search_radius is None:
        return _krige_global(tx, ty, z, qx, qy, model, s, progress)
    k = x.size if neighbours is None else min(int(neighbours), x.size)
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    return _krige_local(tx, ty, z, qx, qy, model, s, k, search_radius, min_neighbours, progress, group,
                        workers)


def lognormal_kriging(x, y, z, xt, yt, model: VariogramModel, **kwargs) -> LognormalResult:
    """Lognormal ordinary kriging: OK of ln(z) (model = variogram of ln z), back-transformed.

    Back-transform: the unbiased lognormal OK estimator of Journel (1980), also Cressie (1993)
    eq. 3.2.40: z* = exp(y* + sigma2_OK / 2 - mu), with y* and sigma2_OK the OK prediction and
    variance of ln z and mu the Lagrange multiplier of the variogram-form system (module doc).
    At a sample (mu = 0, variance 0) it returns the sample value. Keyword arguments as ordinary_kriging.
    """
    z = np.asarray(z, dtype=float).ravel()
    bad = ~(z > 0)
    if bad.any():
        raise JanjaInputError(
            f"Lognormal kriging needs values > 0, but {int(bad.sum())} sample(s) are zero, negative or "
            f"missing (first at index {int(np.flatnonzero(bad)[0])}). Substitute censored values "
            "(e.g. half the detection limit) first, or choose no transform."
        )
    r = ordinary_kriging(x, y, np.log(z), xt, yt, model, **kwargs)
    with np.errstate(over="ignore"):  # an overflow is inf here; the caller refuses it by name (back-transform)
        back = np.exp(r.prediction + r.variance / 2.0 - r.lagrange)
    return LognormalResult(back, r.prediction, r.variance, r.lagrange, r.n_missing, r.n_systems)


def cross_validate(x, y, z, model: VariogramModel, neighbours: int | None = None,
                   search_radius: float | None = None, min_neighbours: int = 1) -> CrossValidation:
    """Leave-one-out cross-validation, equal to gstat's krige.cv with the same neighbourhood.

    Global neighbourhood: all n results from one inverse of the kriging matrix (Dubrule 1983):
    with B = A^-1 of the variogram-form system, residual_i = (B [z; 0])_i / B_ii and
    variance_i = -1 / B_ii (times the matrix scale). Local: each sample is kriged from its
    nearest other samples.
    """
    x, y, z = _check_points(x, y, z, "cross-validation")
    tx, ty = model.transform(x, y)
    _check_duplicates(tx, ty, x, y)
    s = _scale(model, tx, ty)
    n = x.size
    if (neighbours is None or neighbours >= n - 1) and search_radius is None:
        from scipy.linalg import lu_solve

        lu_piv = _global_system(tx, ty, model, s)
        inv = lu_solve(lu_piv, np.eye(n + 1), check_finite=False)
        d = np.diag(inv)[:n]
        resid = blas.matmul(inv[:n, :n], z) / d
        return CrossValidation(x, y, z, z - resid, -s / d)
    from scipy.spatial import cKDTree

    k = min(int(neighbours) if neighbours is not None else n - 1, n - 1)
    bound = np.inf if search_radius is None else float(search_radius)
    _, idx = cKDTree(np.column_stack([tx, ty])).query(np.column_stack([tx, ty]), k=k + 1,
                                                      distance_upper_bound=bound, workers=-1)
    idx = idx.reshape(n, k + 1)
    me = idx == np.arange(n)[:, None]
    idx = np.where(me, n, idx)  # drop the sample itself; the padding sorts to the end
    idx = np.sort(np.where(me.any(axis=1)[:, None], idx, np.where(np.arange(k + 1) == k, n, idx)), axis=1)
    pred, var, _, _, _ = _solve_neighbours(tx, ty, z, model, s, idx[:, :k], tx, ty, min_neighbours, True)
    return CrossValidation(x, y, z, pred, var)
