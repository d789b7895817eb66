"""Variogram checks against gstat 2.1-0 reference outputs on Meuse (made outside this code base)."""


import numpy as np
import pytest
from testdata import MEUSE  # noqa: E402
from testdata import read_csv_table as _csv  # noqa: E402

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import variogram

REF = MEUSE / "gstat_reference"


@pytest.fixture(scope="module")
def meuse():
    d = _csv(MEUSE / "meuse.csv")
    return d["x"].astype(float), d["y"].astype(float), d["zinc"].astype(float)


@pytest.mark.parametrize("name", ["logzinc", "zinc"])
def test_experimental_equals_gstat(meuse, name):
    x, y, zinc = meuse
    v = np.log(zinc) if name == "logzinc" else zinc
    ev = variogram.experimental_variogram(x, y, v)
    ref = _csv(REF / f"variogram_empirical_{name}.csv")
    np.testing.assert_array_equal(ev.np, ref["np"])
    np.testing.assert_allclose(ev.dist, ref["dist"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(ev.gamma, ref["gamma"], rtol=1e-9, atol=0)
    assert ev.width == pytest.approx(ev.cutoff / 15)


@pytest.mark.parametrize("name", ["logzinc", "zinc"])
def test_fit_matches_gstat(meuse, name):
    """Same objective as gstat fit.method 7; ours is the global minimum, gstat's LM stops slightly early.

    Measured: logzinc ours nugget 0.050660 / psill 0.590606 / range 897.006 vs gstat 0.050660 / 0.590605 /
    897.000 (SSE lower by 1.5e-9 relative); zinc ours 24807 / 134749 / 831.12 vs gstat 24818 / 134757 /
    831.42 (nugget 0.05 % lower, SSE lower by 7e-7 relative).
    """
    x, y, zinc = meuse
    v = np.log(zinc) if name == "logzinc" else zinc
    ev = variogram.experimental_variogram(x, y, v)
    fit = variogram.fit_variogram(ev, "Sph")
    ref = _csv(REF / f"variogram_fitted_sph_{name}.csv")
    gstat = variogram.manual_variogram("sph", ref["psill"][0], ref["psill"][1], ref["range"][1], ev=ev)
    assert fit.weighted_sse <= gstat.weighted_sse * (1 + 1e-12)
    assert fit.weighted_sse == pytest.approx(gstat.weighted_sse, rel=1e-5)
    assert fit.nugget == pytest.approx(gstat.nugget, rel=2e-3)
    assert fit.psill == pytest.approx(gstat.psill, rel=2e-3)
    assert fit.range == pytest.approx(gstat.range, rel=2e-3)
    d = fit.to_dict()
    assert d["model"] == "spherical" and set(d) >= {"nugget", "psill", "range", "anisotropy_angle",
                                                    "anisotropy_ratio", "weighted_sse"}


def test_model_definitions():
    h = np.array([0.0, 50.0, 100.0, 300.0])
    sph = variogram.make_model("sph", 1.0, 2.0, 100.0)
    np.testing.assert_allclose(sph(h), [0, 1 + 2 * (0.75 - 0.0625), 3, 3])
    exp = variogram.make_model("exponential", 0.0, 1.0, 100.0)
    np.testing.assert_allclose(exp(h), 1 - np.exp(-h / 100))
    gau = variogram.make_model("gaussian", 0.0, 1.0, 100.0)
    np.testing.assert_allclose(gau(h), 1 - np.exp(-((h / 100) ** 2)))
    lin = variogram.make_model("linear", 0.5, 0.01, 0.0)
    np.testing.assert_allclose(lin(h), [0, 1.0, 1.5, 3.5])
    pw = variogram.make_model("power", 0.0, 2.0, 1.5)
    np.testing.assert_allclose(pw(h), 2 * h**1.5)


def test_anisotropy_major_axis_north_east():
    """anis=c(45, 0.5): along 45 degrees the range is 100, across it 50 (gstat's convention)."""
    m = variogram.make_model("sph", 0.0, 1.0, 100.0, anisotropy_angle=45, anisotropy_ratio=0.5)
    u = np.sqrt(0.5)
    tx, ty = m.transform(np.array([0, 100 * u, 50 * u]), np.array([0, 100 * u, -50 * u]))
    h = np.hypot(tx - tx[0], ty - ty[0])
    np.testing.assert_allclose(h[1:], [100.0, 100.0])


def test_bad_input_is_explained():
    with pytest.raises(JanjaInputError, match="at least 3"):
        variogram.experimental_variogram([0, 1], [0, 1], [1, 2])
    ev = variogram.experimental_variogram(np.arange(10.0), np.arange(10.0) ** 2, np.full(10, 3.0))
    with pytest.raises(JanjaInputError, match="equal"):
        variogram.fit_variogram(ev)
    with pytest.raises(JanjaInputError, match="Unknown variogram model"):
        variogram.make_model("cubic", 0, 1, 1)
    with pytest.raises(JanjaInputError, match="range"):
        variogram.make_model("sph", 0, 1, 0)
