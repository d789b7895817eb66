"""L2 logistic regression in numpy/scipy (no torch), shared by the training package and bench/detect_bench.py.

The shared-trunk logistic head ("dense_head": "logistic") is fit here, and detect_bench.py (run under the plugin's
.venv, which has no torch) imports the same two functions, so the benchmark and the training script fit one model.
"""

import numpy as np

# The bench's grids (bench/detect_dense.py): inverse L2 strength, and the Gaussian sigma of the logit map in
# sample spacings (0: unsmoothed). The training config's defaults.
DENSE_C_GRID = (3e-5, 3e-4, 0.003, 0.03, 0.3, 3.0)
SMOOTH_SPACINGS = (0.0, 0.5, 1.0, 2.0, 4.0)


def fit_logistic(x, y, c, weights=None, scale=None):
    """L2 logistic regression, classes balanced; returns (w, b, mu, sd) for standardised inputs
    (`scale`: a given (mu, sd) instead of the rows' own)."""
    from scipy.optimize import minimize

    x = np.asarray(x, float)  # float32 windows would be upcast at every step of L-BFGS
    mu, sd = scale if scale is not None else (x.mean(axis=0), x.std(axis=0) + 1e-9)
    z = (x - mu) / sd
    w_cls = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1))
    sw = w_cls * (weights if weights is not None else 1.0)
    sw = sw / sw.sum()
    lam = 1.0 / (c * len(y))

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        t = z @ w + b
        s = 2 * y - 1
        m = -s * t
        lo = np.logaddexp(0, m)
        g = sw * (-s) / (1 + np.exp(-m))
        return float(sw @ lo + 0.5 * lam * w @ w), np.r_[z.T @ g + lam * w, g.sum()]

    res = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    return res.x[:-1], res.x[-1], mu, sd


def predict_logistic(model, x):
    w, b, mu, sd = model
    return ((x - mu) / sd) @ w + b
