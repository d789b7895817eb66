"""Kriging checks against gstat 2.1-0 outputs on Meuse, plus mathematical properties."""


import numpy as np
import pytest
from testdata import MEUSE  # noqa: E402
from testdata import read_csv_table as _csv  # noqa: E402

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import kriging, variogram

REF = MEUSE / "gstat_reference"


@pytest.fixture(scope="module")
def meuse():
    d = _csv(MEUSE / "meuse.csv")
    g = _csv(MEUSE / "meuse_grid.csv")
    return d["x"].astype(float), d["y"].astype(float), d["zinc"].astype(float), g["x"], g["y"]


def _gstat_model(name):
    ref = _csv(REF / f"variogram_fitted_sph_{name}.csv")
    return variogram.make_model("sph", ref["psill"][0], ref["psill"][1], ref["range"][1])


def _values(zinc, name):
    return np.log(zinc) if name == "logzinc" else zinc


@pytest.mark.parametrize("name", ["logzinc", "zinc"])
def test_global_ok_equals_gstat(meuse, name):
    x, y, zinc, gx, gy = meuse
    r = kriging.ordinary_kriging(x, y, _values(zinc, name), gx, gy, _gstat_model(name))
    ref = _csv(REF / f"ok_global_{name}_meuse_grid.csv")
    np.testing.assert_allclose(r.prediction, ref["pred"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(r.variance, ref["var"], rtol=1e-9, atol=0)
    assert r.n_missing == 0


def test_local_nmax20_equals_gstat(meuse):
    x, y, zinc, gx, gy = meuse
    r = kriging.ordinary_kriging(x, y, np.log(zinc), gx, gy, _gstat_model("logzinc"), neighbours=20)
    ref = _csv(REF / "ok_nmax20_logzinc_meuse_grid.csv")
    np.testing.assert_allclose(r.prediction, ref["pred"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(r.variance, ref["var"], rtol=1e-9, atol=0)
    assert r.n_systems < gx.size  # cells shared neighbour sets


@pytest.mark.parametrize("name", ["logzinc", "zinc"])
def test_loocv_equals_gstat(meuse, name):
    x, y, zinc, _, _ = meuse
    cv = kriging.cross_validate(x, y, _values(zinc, name), _gstat_model(name))
    ref = _csv(REF / f"loocv_ok_global_{name}.csv")
    for ours, theirs in ((cv.predicted, "pred"), (cv.variance, "var"), (cv.observed, "observed")):
        np.testing.assert_allclose(ours, ref[theirs], rtol=1e-9, atol=0)
    np.testing.assert_allclose(cv.residual, ref["residual"], rtol=1e-9, atol=1e-12 * np.ptp(ref["observed"]))
    np.testing.assert_allclose(cv.zscore, ref["zscore"], rtol=1e-9, atol=1e-9)
    summary = cv.summary()
    assert summary["rmse"] == pytest.approx(np.sqrt(np.mean(ref["residual"] ** 2)), rel=1e-9)
    rmse, half_digit = {"logzinc": (0.392, 5e-4), "zinc": (224.8, 0.05)}[name]  # PROVENANCE.md
    assert summary["rmse"] == pytest.approx(rmse, abs=half_digit)
    assert summary["mean_squared_zscore"] == pytest.approx(np.mean(ref["zscore"] ** 2), rel=1e-9)


def test_local_loocv_is_kriging_without_the_sample(meuse):
    x, y, zinc, _, _ = meuse
    z, m = np.log(zinc), _gstat_model("logzinc")
    cv = kriging.cross_validate(x, y, z, m, neighbours=10)
    for i in (0, 77, 154):
        keep = np.arange(x.size) != i
        r = kriging.ordinary_kriging(x[keep], y[keep], z[keep], x[i:i + 1], y[i:i + 1], m, neighbours=10)
        assert cv.predicted[i] == pytest.approx(r.prediction[0], rel=1e-12)
        assert cv.variance[i] == pytest.approx(r.variance[0], rel=1e-12)


def test_autofit_predictions_close_to_gstat_fit(meuse):
    x, y, zinc, gx, gy = meuse
    z = np.log(zinc)
    fit = variogram.fit_variogram(variogram.experimental_variogram(x, y, z), "spherical")
    ours = kriging.ordinary_kriging(x, y, z, gx, gy, fit).prediction
    ref = _csv(REF / "ok_global_logzinc_meuse_grid.csv")["pred"]
    assert np.sqrt(np.mean((ours - ref) ** 2)) < 0.01 * np.std(z)


def test_lognormal_back_transform(meuse):
    x, y, zinc, gx, gy = meuse
    m = _gstat_model("logzinc")
    at_data = kriging.lognormal_kriging(x, y, zinc, x, y, m)
    np.testing.assert_allclose(at_data.prediction, zinc, rtol=1e-10)
    r = kriging.lognormal_kriging(x, y, zinc, gx, gy, m)
    ok = kriging.ordinary_kriging(x, y, np.log(zinc), gx, gy, m)
    np.testing.assert_allclose(r.log_prediction, ok.prediction, rtol=1e-12)
    journel = np.exp(ok.prediction + ok.variance / 2 - ok.lagrange)
    np.testing.assert_allclose(r.prediction, journel, rtol=1e-12)
    assert np.all(r.prediction > np.exp(r.log_prediction) * 0.5)
    with pytest.raises(JanjaInputError, match="values > 0"):
        kriging.lognormal_kriging(x, y, np.where(np.arange(x.size) == 3, 0.0, zinc), gx, gy, m)


def _random_case(n, seed=3):
    rng = np.random.default_rng(seed)
    x, y = rng.random(n) * 5000, rng.random(n) * 5000
    z = np.sin(x / 700) + np.cos(y / 900) + rng.normal(scale=0.2, size=n)
    return x, y, z


@pytest.mark.parametrize("neighbours", [None, 16])
def test_exact_at_data_without_nugget(neighbours):
    x, y, z = _random_case(300)
    m = variogram.make_model("exponential", 0.0, 1.0, 800.0)
    r = kriging.ordinary_kriging(x, y, z, x, y, m, neighbours=neighbours)
    np.testing.assert_allclose(r.prediction, z, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r.variance, 0.0, atol=1e-10)


def test_point_order_does_not_matter():
    x, y, z = _random_case(400)
    m = variogram.make_model("sph", 0.05, 1.0, 1500.0, anisotropy_angle=30, anisotropy_ratio=0.6)
    tx, ty = np.meshgrid(np.linspace(0, 5000, 40), np.linspace(0, 5000, 30))
    perm = np.random.default_rng(9).permutation(x.size)
    for k in (None, 24):
        a = kriging.ordinary_kriging(x, y, z, tx, ty, m, neighbours=k)
        b = kriging.ordinary_kriging(x[perm], y[perm], z[perm], tx, ty, m, neighbours=k)
        np.testing.assert_allclose(a.prediction, b.prediction, rtol=1e-9)
        np.testing.assert_allclose(a.variance, b.variance, rtol=1e-9)


def test_constant_field_gives_the_constant():
    x, y, _ = _random_case(200)
    m = variogram.make_model("gaussian", 0.1, 1.0, 500.0)
    for k in (None, 12):
        r = kriging.ordinary_kriging(x, y, np.full(x.size, 42.0), [10.0, 2500, 4999], [3.0, 2500, 100], m,
                                     neighbours=k)
        np.testing.assert_allclose(r.prediction, 42.0, rtol=1e-10)


def test_grouped_local_equals_plain_definition():
    """2,000 samples, 32 nearest: grouped/batched solves == each cell solved from its own neighbours."""
    x, y, z = _random_case(2000, seed=11)
    m = variogram.make_model("sph", 0.1, 1.0, 1200.0)
    tx, ty = np.meshgrid(np.linspace(0, 5000, 150), np.linspace(0, 5000, 150))
    grouped = kriging.ordinary_kriging(x, y, z, tx, ty, m, neighbours=32)
    plain = kriging.ordinary_kriging(x, y, z, tx, ty, m, neighbours=32, group=False, workers=1)
    assert grouped.n_systems < plain.n_systems == tx.size
    np.testing.assert_allclose(grouped.prediction, plain.prediction, rtol=1e-9, atol=0)
    np.testing.assert_allclose(grouped.variance, plain.variance, rtol=1e-9, atol=0)
    # and the plain batch equals a textbook loop for a few cells
    from scipy.spatial import cKDTree

    _, idx = cKDTree(np.column_stack([x, y])).query(np.column_stack([tx.ravel(), ty.ravel()]), k=32)
    for c in (0, 5000, 22499):
        nb = idx[c]
        h = np.hypot(x[nb][:, None] - x[nb][None, :], y[nb][:, None] - y[nb][None, :])
        a = np.ones((33, 33))
        a[:32, :32], a[32, 32] = m(h), 0.0
        b = np.append(m(np.hypot(x[nb] - tx.ravel()[c], y[nb] - ty.ravel()[c])), 1.0)
        w = np.linalg.solve(a, b)
        assert grouped.prediction[c] == pytest.approx(w[:32] @ z[nb], rel=1e-9)
        assert grouped.variance[c] == pytest.approx(w @ b, rel=1e-9)


def test_search_radius_and_minimum_neighbours():
    x, y, z = _random_case(300)
    m = variogram.make_model("sph", 0.1, 1.0, 1000.0)
    far = [20000.0, 2500.0]
    r = kriging.ordinary_kriging(x, y, z, far, [20000.0, 2500.0], m, neighbours=8, search_radius=600,
                                 min_neighbours=3)
    assert np.isnan(r.prediction[0]) and np.isnan(r.variance[0]) and r.n_missing == 1
    assert np.isfinite(r.prediction[1])


def test_progress_and_cancel():
    x, y, z = _random_case(500)
    m = variogram.make_model("sph", 0.1, 1.0, 1000.0)
    tx, ty = np.meshgrid(np.linspace(0, 5000, 300), np.linspace(0, 5000, 300))
    seen = []
    kriging.ordinary_kriging(x, y, z, tx, ty, m, neighbours=16, progress=lambda f: seen.append(f) and False)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(kriging.KrigingCancelled):
        kriging.ordinary_kriging(x, y, z, tx, ty, m, neighbours=16, progress=lambda f: True)


def test_bad_input_is_explained():
    m = variogram.make_model("sph", 0.0, 1.0, 100.0)
    with pytest.raises(JanjaInputError, match="at least 3"):
        kriging.ordinary_kriging([0, 1], [0, 1], [1, 2], [0.5], [0.5], m)
    x, y, z = np.array([0.0, 10, 10, 50]), np.array([0.0, 5, 5, 20]), np.array([1.0, 2, 3, 4])
    for k in (None, 3):
        with pytest.raises(JanjaInputError, match="same place"):
            kriging.ordinary_kriging(x, y, z, [1.0], [1.0], m, neighbours=k)
    with pytest.raises(JanjaInputError, match="non-finite"):
        kriging.ordinary_kriging([0, 1, np.nan], [0, 1, 2], [1, 2, 3], [0.5], [0.5], m)
    # almost coincident samples with a Gaussian model and no nugget: numerically singular
    g = variogram.make_model("gaussian", 0.0, 1.0, 1000.0)
    xs = np.array([0.0, 1e-3, 5, 500, 900])
    with pytest.raises(JanjaInputError, match="singular"):
        kriging.ordinary_kriging(xs, xs * 0.5, np.arange(5.0), [100.0], [100.0], g)


def _textbook_local(x, y, z, tx, ty, m, k):
    """Each target kriged from its own k nearest samples: variogram-form system solved by LU."""
    from scipy.spatial import cKDTree

    sx, sy = m.transform(x, y)
    qx, qy = m.transform(tx, ty)
    _, idx = cKDTree(np.column_stack([sx, sy])).query(np.column_stack([qx, qy]), k=k)
    px, py = sx[idx], sy[idx]
    a = np.ones((idx.shape[0], k + 1, k + 1))
    a[:, :k, :k] = m(np.hypot(px[:, :, None] - px[:, None, :], py[:, :, None] - py[:, None, :]))
    a[:, k, k] = 0.0
    b = np.ones((idx.shape[0], k + 1))
    b[:, :k] = m(np.hypot(px - qx[:, None], py - qy[:, None]))
    w = np.linalg.solve(a, b[:, :, None])[:, :, 0]
    return np.einsum("ij,ij->i", w[:, :k], z[idx]), np.einsum("ij,ij->i", w, b), w[:, k]


@pytest.mark.parametrize("model", [
    ("sph", 0.1, 1.0, 900.0, 0.0, 1.0),
    ("sph", 0.0, 1.0, 900.0, 0.0, 1.0),
    ("exp", 0.2, 0.8, 500.0, 35.0, 0.4),
    ("gau", 0.05, 1.0, 600.0, 120.0, 0.7),
    ("lin", 0.1, 1.0, 2000.0, 0.0, 1.0),
    ("pow", 0.1, 0.002, 1.2, 0.0, 1.0),
    ("sph", 0.0, 1.0, 1e6, 0.0, 1.0),  # range >> neighbourhood: left to LU for accuracy
    ("exp", 0.0, 1.0, 1e5, 0.0, 1.0),
])
def test_local_paths_equal_textbook_definition(model):
    """Cholesky (bounded models), LU (unbounded / many targets per set) and grouping all give the plain
    definition to 1e-9: nugget, no nugget, anisotropy, targets on samples, sets shared by 1 to many cells."""
    x, y, z = _random_case(300, seed=5)
    z = z + 100.0  # a large mean: the Cholesky form must not lose digits to it
    m = variogram.make_model(model[0], *model[1:4], anisotropy_angle=model[4], anisotropy_ratio=model[5])
    gx, gy = np.meshgrid(np.linspace(0, 5000, 90), np.linspace(0, 5000, 70))
    tx, ty = np.concatenate([gx.ravel(), x[:25]]), np.concatenate([gy.ravel(), y[:25]])
    pred, var, mu = _textbook_local(x, y, z, tx, ty, m, 12)
    r = kriging.ordinary_kriging(x, y, z, tx, ty, m, neighbours=12)
    assert r.n_systems < tx.size  # some sets are shared, by up to many targets
    np.testing.assert_allclose(r.prediction, pred, rtol=1e-9, atol=0)
    np.testing.assert_allclose(r.variance, var, rtol=1e-9, atol=1e-12)  # 0 at samples without nugget
    np.testing.assert_allclose(r.lagrange, mu, rtol=1e-9, atol=1e-12)  # mu passes through 0
    if model[1] == 0.0:
        np.testing.assert_allclose(r.prediction[-25:], z[:25], rtol=1e-12)


def test_local_singular_system_still_reported():
    """Nearly coincident samples, Gaussian model without nugget: the Cholesky form gives up on the
    tiny pivots and LU reports the singular system, as in the global case."""
    g = variogram.make_model("gaussian", 0.0, 1.0, 1000.0)
    xs = np.array([0.0, 1e-3, 5, 500, 900, 1400])
    with pytest.raises(JanjaInputError, match="singular"):
        kriging.ordinary_kriging(xs, xs * 0.5, np.arange(6.0), [100.0, 800.0], [100.0, 300.0], g, neighbours=4)


def test_block_neighbour_search_equals_tree_query():
    """The binned candidate search returns the tree's k nearest sets: random, clustered and far-away
    targets, and integer coordinates with many exact ties for the k-th place."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(17)
    cases = []
    x, y = rng.random(3000) * 1e4, rng.random(3000) * 1e4
    gx, gy = np.meshgrid(np.linspace(-3000, 13000, 120), np.linspace(0, 1e4, 90))
    cases.append((x, y, gx.ravel(), gy.ravel(), 32))
    cases.append((x, y, np.r_[rng.normal(2000, 50, 3000), rng.random(3000) * 1e4],
                  np.r_[rng.normal(7000, 50, 3000), rng.random(3000) * 1e4], 7))
    xi, yi = np.meshgrid(np.arange(0.0, 2000, 50), np.arange(0.0, 2000, 50))  # a regular sample grid
    ti, tj = np.meshgrid(np.arange(0.0, 2000, 25), np.arange(0.0, 2000, 10))
    cases.append((xi.ravel(), yi.ravel(), ti.ravel(), tj.ravel(), 20))
    for sx, sy, qx, qy, k in cases:
        tree = cKDTree(np.column_stack([sx, sy]))
        ours = kriging._k_nearest(tree, sx, sy, qx, qy, k)
        ref = tree.query(np.column_stack([qx, qy]), k=k)[1]
        np.testing.assert_array_equal(np.sort(ours, axis=1), np.sort(ref, axis=1))


def test_one_neighbour_gives_the_nearest_sample_without_a_warning():
    """With one neighbour there is no sample pair: the conditioning check used to average an empty array
    (numpy's "Mean of empty slice" in every log). The estimate is the nearest sample's value."""
    import warnings

    rng = np.random.default_rng(0)
    x, y, z = rng.random(30) * 1000, rng.random(30) * 1000, rng.random(30)
    qx, qy = np.array([500.0, 100.0]), np.array([500.0, 900.0])
    model = variogram.VariogramModel("spherical", 0.1, 1.0, 400.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = kriging.ordinary_kriging(x, y, z, qx, qy, model, neighbours=1)
    nearest = np.argmin(np.hypot(x[None] - qx[:, None], y[None] - qy[:, None]), axis=1)
    np.testing.assert_allclose(result.prediction, z[nearest], rtol=0, atol=1e-12)
