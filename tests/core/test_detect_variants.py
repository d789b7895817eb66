"""The detection benchmark's later variants (bench/detect_variants.py): the 8 symmetries of the square are a true
group action and the D4 logistic regression is the x8-augmented one, PU weights and bags behave, the small
gradient boosting learns what a linear model cannot, and the unsupervised scores rank what they claim to."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import detect_bench as db  # noqa: E402
import detect_variants as dv  # noqa: E402


def _generic(shape=(2, 5, 5), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _element(x):
    """Which element of the 8 a transformed array is (by exact comparison with all of them)."""
    hits = [m for m in range(8) if np.array_equal(x, dv.d4(_generic(), m))]
    assert len(hits) == 1
    return hits[0]


def test_d4_is_a_group_action_on_windows():
    x = _generic()
    images = [dv.d4(x, g) for g in range(8)]
    assert np.array_equal(images[0], x)  # identity
    assert len({im.tobytes() for im in images}) == 8  # 8 distinct symmetries on a generic window
    table = {}
    for g, h in itertools.product(range(8), repeat=2):  # closure: a composition is again one of the 8
        table[g, h] = _element(dv.d4(dv.d4(x, h), g))
    for g in range(8):  # every element has an inverse; each row of the table is a permutation
        assert any(table[g, h] == 0 for h in range(8))
        assert sorted(table[g, h] for h in range(8)) == list(range(8))
    for g, h, k in itertools.product(range(8), repeat=3):  # associativity of the composition table
        assert table[table[g, h], k] == table[g, table[h, k]]
    for g in range(8):  # it is a symmetry of the square: channels are untouched, values only move
        assert np.array_equal(np.sort(dv.d4(x, g)[0].ravel()), np.sort(x[0].ravel()))
        assert np.array_equal(dv.d4(x, g)[1], dv.d4(x[1:], g)[0])
    with pytest.raises(ValueError):
        dv.d4(x, 8)


def test_d4_orbits_of_a_5x5_window():
    orbit = dv.d4_orbits((2, 5, 5))
    assert orbit.max() + 1 == 12  # per channel: centre, 4 edge-adjacent, 4 diagonal, 4 at 2, 8 at (2,1), 4 corners
    sizes = sorted(np.bincount(orbit).tolist())
    assert sizes == [1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8]
    x = _generic()
    for g in range(8):  # a window and its image share every orbit's sum
        assert np.allclose(np.bincount(orbit, x.ravel()), np.bincount(orbit, dv.d4(x, g).ravel()))


def test_d4_augment_tiles_labels_in_the_same_order():
    x = _generic((3, 1, 3, 3))
    y = np.array([1, 0, 0])
    xa, ya = dv.d4_augment(x, y)
    assert xa.shape == (24, 1, 3, 3) and ya.tolist() == [1, 0, 0] * 8
    assert np.array_equal(xa[3 * 5 + 2], dv.d4(x[2], 5))


def _windows(n=400, seed=1):
    """Windows whose class shows as an off-centre bump in a random orientation (no orientation is special)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 5, 5))
    y = (rng.random(n) < 0.3).astype(np.int64)
    bump = np.zeros((2, 5, 5))
    bump[0, 1, 3], bump[1, 2, 4] = 1.5, 1.0
    for i in np.nonzero(y)[0]:
        x[i] += dv.d4(bump, int(rng.integers(8)))
    return x, y


def test_d4_logistic_regression_is_the_x8_augmented_fit_and_orientation_free():
    x, y = _windows()
    fast = db.fit_logistic_d4(x, y, 0.3)
    xa, ya = dv.d4_augment(x, y)
    slow = db.fit_logistic(xa.reshape(len(xa), -1), ya, 0.3)
    test, _ = _windows(50, seed=2)
    flat = test.reshape(len(test), -1)
    slow_mean = dv.d4_mean(lambda v: db.predict_logistic(slow, v.reshape(len(v), -1)), test)
    assert np.allclose(fast(flat), slow_mean, atol=2e-3 * np.abs(slow_mean).max())
    for g in range(8):  # the same score in every orientation (test-time averaging changes nothing)
        assert np.allclose(fast(dv.d4(test, g).reshape(len(test), -1)), fast(flat), atol=1e-9)
    plain = db.fit_logistic(x.reshape(len(x), -1), y, 0.3)  # an unsymmetrised fit is not orientation-free
    turned = db.predict_logistic(plain, dv.d4(test, 1).reshape(len(test), -1))
    assert not np.allclose(turned, db.predict_logistic(plain, flat), atol=1e-3)


def test_pu_rerank_weights_down_weight_only_the_top_background():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.2).astype(int)
    t = rng.standard_normal(1000)
    assert np.array_equal(dv.rerank_weights(t, y, 0.0), np.ones(1000))
    w = dv.rerank_weights(t, y, 0.1)
    assert (w[y == 1] == 1).all()
    down = (w == 0.2) & (y == 0)
    assert abs(down.sum() - 0.1 * (y == 0).sum()) <= 1
    assert t[down].min() >= t[(y == 0) & ~down].max()


def test_spy_keeps_every_positive_and_only_background_below_the_spies():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(int)
    t = rng.standard_normal(500) + 2 * y
    spies = dv.spy_split(y, 0.15, rng)
    assert (y[spies] == 1).all() and 1 <= spies.size < y.sum()
    keep = dv.spy_reliable(t, y, spies, 0.05)
    assert keep[y == 1].all()
    cut = np.quantile(t[spies], 0.05)
    assert (t[keep & (y == 0)] < cut).all() and (keep & (y == 0)).sum() >= 0.2 * (y == 0).sum()
    low = np.where(y == 1, t - 10, t)  # every spy below all the background: none is reliable by the cut
    floor = dv.spy_reliable(low, y, spies, 0.05, min_share=0.5)  # ... so the lowest half of it is kept
    assert floor[y == 1].all()
    kept_neg = np.nonzero(floor & (y == 0))[0]
    assert kept_neg.size == int(np.ceil(0.5 * (y == 0).sum()))
    assert t[kept_neg].max() == np.sort(t[y == 0])[kept_neg.size - 1]


def test_pu_bags_hold_every_positive_and_distinct_random_background():
    y = np.r_[np.ones(30, int), np.zeros(300, int)]
    bags = dv.pu_bags(y, 3.0, 5, np.random.default_rng(0))
    assert len(bags) == 5
    for b in bags:
        assert set(np.nonzero(y)[0]) <= set(b.tolist()) and len(set(b.tolist())) == b.size == 30 + 90
    assert len({b.tobytes() for b in bags}) == 5


def test_gradient_boosting_learns_an_interaction_a_linear_model_cannot():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 4))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)  # XOR: no single direction separates the classes
    xt = rng.standard_normal((1000, 4))
    yt = ((xt[:, 0] > 0) ^ (xt[:, 1] > 0)).astype(int)
    from janja_plugin.core.evaluation.evaluate import auc_mann_whitney

    gbm = dv.GradientBoosting(rounds=60).fit(x, y)
    s = gbm.decision(xt)
    assert auc_mann_whitney(s[yt == 1], s[yt == 0]) > 0.95
    lr = db.predict_logistic(db.fit_logistic(x, y, 1.0), xt)
    assert auc_mann_whitney(lr[yt == 1], lr[yt == 0]) < 0.6


def test_unsupervised_scores_rank_the_unusual_rows_first():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((3, 10))
    x = rng.standard_normal((3000, 3)) @ basis + 0.01 * rng.standard_normal((3000, 10))
    odd = rng.standard_normal((20, 10))  # rows off the survey's usual patterns
    allx = np.r_[x, odd]
    mu, axes = dv.pca_fit(x[:2000], kept=0.999)
    r = dv.pca_residual(allx, mu, axes)
    assert axes.shape[0] <= 3 and r[:3000].max() < r[3000:].min()
    z = rng.standard_normal((3000, 4))
    z[:30] += 6.0
    d = dv.mcd_distance(z)
    assert np.median(d[:30]) > np.quantile(d[30:], 0.99)
