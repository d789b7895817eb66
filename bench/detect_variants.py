"""Building blocks of the detection benchmark's later variants (issue 16, item 2), pure numpy/scipy.

- The 8 symmetries of the square (D4) acting on windows: training windows augmented x8, test scores the mean
  over the 8 transformed windows (a deposit's halo has no preferred orientation or handedness).
- Positive-unlabelled treatment of the background (unknown deposits hide among the negatives): the spy
  technique (Liu et al. 2002) and bagging PU (Mordelet & Vert 2014), beside the benchmark's re-ranking.
- A small histogram gradient-boosting classifier (logistic loss, depth-limited trees): scikit-learn is in
  neither venv, and 60 lines do not earn a dependency.
- Unsupervised, label-free scores with spatial context: robust Mahalanobis (MCD) of multi-scale survey ranks,
  and the reconstruction error of rank windows by their principal components.
"""

import numpy as np

# ------------------------------------------------------------------ D4: the 8 symmetries of the square


def d4(x, g):
    """Symmetry g (0..7) of the square on the last two axes: g % 4 quarter turns, after a mirror when g >= 4."""
    if not 0 <= g < 8:
        raise ValueError(f"D4 has 8 elements (0..7), not {g}")
    y = np.flip(x, axis=-1) if g >= 4 else x
    return np.rot90(y, g % 4, axes=(-2, -1))


def d4_orbits(shape):
    """Orbit id (0..k-1) of every position of a flattened window of `shape` under D4 (channels apart)."""
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    moved = np.stack([d4(idx, g).ravel() for g in range(8)])  # moved[g, j]: the position g brings to j
    return np.unique(moved.min(axis=0), return_inverse=True)[1]


def d4_augment(x, y=None):
    """Every window in all 8 orientations, group element major: (8n, ...) and labels tiled to match."""
    out = np.concatenate([d4(x, g) for g in range(8)], axis=0)
    return out if y is None else (out, np.tile(np.asarray(y), 8))


def d4_mean(score, x):
    """Test-time symmetrisation: the mean of score(window) over the 8 orientations of each window."""
    return np.mean([score(d4(x, g)) for g in range(8)], axis=0)


# ------------------------------------------------------------------ positive-unlabelled background


def rerank_weights(scores, y, share, down=0.2):
    """Down-weight the `share` of background rows the first fit ranks highest (they may be unknown deposits)."""
    y = np.asarray(y)
    w = np.ones(y.size)
    if share <= 0:
        return w
    neg = y == 0
    cut = np.quantile(scores[neg], 1 - share)
    w[neg & (scores >= cut)] = down
    return w


def spy_split(y, spy_share, rng):
    """Rows of positives sent among the background as spies (at least one, never all)."""
    pos = np.nonzero(np.asarray(y) == 1)[0]
    n = int(np.clip(round(spy_share * pos.size), 1, max(pos.size - 1, 1)))
    return np.sort(rng.choice(pos, n, replace=False))


def spy_reliable(scores, y, spies, noise, min_share=0.2):
    """Rows kept after the spy step: every positive, and the background scored below the `noise` quantile of
    the spies (a background cell that scores like a hidden positive is left out). At least `min_share` of the
    background is kept (its lowest-scoring rows) so the refit still sees a background."""
    y = np.asarray(y)
    neg = np.nonzero(y == 0)[0]
    cut = np.quantile(scores[spies], noise)
    reliable = neg[scores[neg] < cut]
    floor = int(np.ceil(min_share * neg.size))
    if reliable.size < floor:
        reliable = neg[np.argsort(scores[neg], kind="stable")[:floor]]
    keep = np.zeros(y.size, bool)
    keep[y == 1] = True
    keep[reliable] = True
    return keep


def pu_bags(y, ratio, bags, rng):
    """Row sets of bagging PU: each bag holds every positive and `ratio` x as many background rows drawn at
    random without replacement (each bag's model sees a different share of the hidden deposits)."""
    y = np.asarray(y)
    pos, neg = np.nonzero(y == 1)[0], np.nonzero(y == 0)[0]
    n = int(min(neg.size, max(1, round(ratio * pos.size))))
    return [np.sort(np.r_[pos, rng.choice(neg, n, replace=False)]) for _ in range(bags)]


# ------------------------------------------------------------------ gradient boosting (numpy)


class GradientBoosting:
    """Logistic-loss gradient boosting on quantile-binned features, level-wise trees of depth `depth`.

    Classes are balanced by sample weight (as the logistic regressions are). Returns log-odds scores.
    """

    def __init__(self, rounds=100, depth=2, rate=0.1, bins=32, lam=1.0, min_hess=1e-3):
        self.rounds, self.depth, self.rate = rounds, depth, rate
        self.bins, self.lam, self.min_hess = bins, lam, min_hess

    def fit(self, x, y, weights=None):
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        n, nf = x.shape
        sw = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * n
        if weights is not None:
            sw = sw * weights
        qs = np.linspace(0, 1, self.bins + 1)[1:-1]
        self.edges = [np.unique(np.quantile(x[:, f], qs)) for f in range(nf)]
        xb = np.stack([np.searchsorted(self.edges[f], x[:, f], side="left") for f in range(nf)], axis=1)
        offset = np.arange(nf) * (self.bins + 1)
        p1 = np.clip(np.sum(sw * y) / np.sum(sw), 1e-6, 1 - 1e-6)
        self.base = float(np.log(p1 / (1 - p1)))
        raw = np.full(n, self.base)
        self.trees = []
        for _ in range(self.rounds):
            p = 1 / (1 + np.exp(-raw))
            g, h = sw * (p - y), sw * np.maximum(p * (1 - p), 1e-12)
            tree, leaf_of = self._tree(xb, g, h, offset, nf)
            raw += tree["values"][leaf_of]
            self.trees.append(tree)
        return self

    def _tree(self, xb, g, h, offset, nf):
        """One level-wise tree; splits stored as (feature, bin): rows with bin <= b go left."""
        n = xb.shape[0]
        node = np.zeros(n, np.int64)  # node index within the current level
        splits = []
        nb = self.bins + 1
        for _level in range(self.depth):
            k = node.max() + 1
            level = []
            new = np.zeros(n, np.int64)
            for j in range(k):
                rows = np.nonzero(node == j)[0]
                flat = (xb[rows] + offset).ravel()
                gh = np.bincount(flat, np.repeat(g[rows], nf), nf * nb).reshape(nf, nb)
                hh = np.bincount(flat, np.repeat(h[rows], nf), nf * nb).reshape(nf, nb)
                gl, hl = np.cumsum(gh, axis=1), np.cumsum(hh, axis=1)
                gt, ht = gl[:, -1:], hl[:, -1:]
                gr, hr = gt - gl, ht - hl
                with np.errstate(divide="ignore", invalid="ignore"):
                    gain = gl ** 2 / (hl + self.lam) + gr ** 2 / (hr + self.lam) - gt ** 2 / (ht + self.lam)
                gain[(hl < self.min_hess) | (hr < self.min_hess)] = -np.inf
                f, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
                if not np.isfinite(gain[f, b]) or gain[f, b] <= 0:
                    f, b = 0, nb  # no useful split: everything goes left
                level.append((int(f), int(b)))
                left = xb[rows, f] <= b
                new[rows] = 2 * j + np.where(left, 0, 1)
            splits.append(level)
            node = new
        leaves = 2 ** self.depth
        gs = np.bincount(node, g, leaves)
        hs = np.bincount(node, h, leaves)
        values = -self.rate * gs / (hs + self.lam)
        return {"splits": splits, "values": values}, node

    def decision(self, x):
        x = np.asarray(x, float)
        xb = np.stack([np.searchsorted(self.edges[f], x[:, f], side="left") for f in range(x.shape[1])], axis=1)
        out = np.full(x.shape[0], self.base)
        for tree in self.trees:
            node = np.zeros(x.shape[0], np.int64)
            for level in tree["splits"]:
                f = np.array([s[0] for s in level])[node]
                b = np.array([s[1] for s in level])[node]
                node = 2 * node + (xb[np.arange(x.shape[0]), f] > b)
            out += tree["values"][node]
        return out


# ------------------------------------------------------------------ unsupervised scores


def mcd_distance(x, seed=42):
    """Robust Mahalanobis distance of each row from the MCD background (location and scatter fitted on a
    5,000-row subsample), for label-free features such as multi-scale survey ranks."""
    from janja_plugin.core.anomaly.multivariate import _mahalanobis_sq, fast_mcd

    loc, cov, _ = fast_mcd(x, seed=seed)
    return np.sqrt(_mahalanobis_sq(np.asarray(x, float), loc, cov))


def pca_fit(x, kept=0.9):
    """Mean and the principal axes that explain the `kept` share of the variance of rows `x`."""
    x = np.asarray(x, float)
    mu = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    share = np.cumsum(s ** 2) / np.sum(s ** 2)
    return mu, vt[:int(np.searchsorted(share, kept) + 1)]


def pca_residual(x, mu, basis):
    """Reconstruction error of each row by those axes: a window unlike the survey's usual patterns scores high."""
    z = np.asarray(x, float) - mu
    return np.linalg.norm(z - (z @ basis.T) @ basis, axis=1)
