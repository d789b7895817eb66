"""The multi-element kriging job: censoring, duplicates, refusals, report (no QGIS)."""

import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import krige_pipeline as kp
from janja_plugin.core.geostatistics.kriging import KrigingCancelled
from janja_plugin.core.raster_grid import grid_for_extent


def field(n=60, seed=1):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    z = np.exp(np.sin(x / 3000) + np.cos(y / 2500) + 0.1 * rng.standard_normal(n))
    return x, y, z


GRID = grid_for_extent(0, 0, 10_000, 10_000, cell=500.0)


def test_krige_two_elements_with_censoring_and_duplicates(tmp_path):
    x, y, z = field()
    x = np.append(x, x[0])  # a duplicate location: must be merged, not make the system singular
    y = np.append(y, y[0])
    au = [str(v) for v in z] + [str(z[0] * 3)]
    au[5] = "<0.1"
    cu = list(z * 10) + [-9999]
    res = kp.krige_elements(x, y, {"Au": au, "Cu": cu}, kp.KrigeSettings(), GRID, log=lambda s: None)
    assert [r.name for r in res] == ["Au", "Cu"]
    au_res = res[0]
    assert au_res.counts["below_dl"] == 1 and au_res.n_locations == 60 and au_res.n_merged_groups == 1
    assert res[1].counts["missing"] == 1 and res[1].n_merged_groups == 0
    assert au_res.prediction.shape == (GRID.nrows, GRID.ncols) and np.all(au_res.prediction > 0)
    assert np.isfinite(au_res.cv_summary["rmse"])
    kp.write_report(res, kp.KrigeSettings(), tmp_path / "r.html", crs_name="EPSG:32750", grid=GRID)
    text = (tmp_path / "r.html").read_text()
    assert "<h2>Au</h2>" in text and "<h2>Cu</h2>" in text and text.count("<svg") == 4


@pytest.mark.parametrize(
    "column, settings, message",
    [
        (["1.0", "2.0", None, None], kp.KrigeSettings(), "only 2 usable"),
        ([5.0] * 60, kp.KrigeSettings(transform="none"), "equal"),
        (["<0.5"] * 10 + [1.0] * 50, kp.KrigeSettings(substitution="dl_factor", dl_factor=0.0), "log transform"),
        (None, kp.KrigeSettings(fit="manual", nugget=0.1), "partial sill|psill"),
    ],
)
def test_refusals_name_the_element_and_the_fix(column, settings, message):
    x, y, z = field()
    if column is None:
        column = list(z)
    x, y = x[: len(column)], y[: len(column)]
    with pytest.raises(JanjaInputError, match=message):
        kp.krige_elements(x, y, {"Au_ppb": column}, settings, GRID, log=lambda s: None)


def test_global_refused_for_large_surveys():
    n = kp.GLOBAL_MAX_SAMPLES + 1
    rng = np.random.default_rng(0)
    with pytest.raises(JanjaInputError, match="to 32"):
        kp.krige_elements(rng.uniform(0, 1, n), rng.uniform(0, 1, n), {"Cu": list(rng.uniform(1, 2, n))},
                          kp.KrigeSettings(), GRID, log=lambda s: None)


def test_progress_and_cancel():
    x, y, z = field()
    seen = []
    kp.krige_elements(x, y, {"Au": list(z)}, kp.KrigeSettings(neighbours=16), GRID,
                      progress=lambda f: seen.append(f) or False, log=lambda s: None)
    assert seen and max(seen) == pytest.approx(1.0)
    with pytest.raises(KrigingCancelled):
        kp.krige_elements(x, y, {"Au": list(z)}, kp.KrigeSettings(neighbours=16), GRID,
                          progress=lambda f: True, log=lambda s: None)


def test_mask_leaves_cells_outside_nan():
    x, y, z = field()
    inside = np.zeros((GRID.nrows, GRID.ncols), bool)
    inside[:5, :5] = True
    (r,) = kp.krige_elements(x, y, {"Au": list(z)}, kp.KrigeSettings(), GRID, inside=inside, log=lambda s: None)
    assert np.isfinite(r.prediction[inside]).all() and np.isnan(r.prediction[~inside]).all()


def test_default_cell_size_is_round():
    assert kp.default_cell_size(100_000, 40_000) == 500.0
    assert kp.default_cell_size(3_000, 3_000) == 20.0  # 15 m rounded up to a round step


def test_mixed_detection_limit_warning_reaches_the_report(tmp_path):
    x, y, z = field()
    column = list(z * 0.01)
    column[:5] = [-0.5] * 5  # censored at a limit far above every measured value
    logged = []
    settings = kp.KrigeSettings(fit="manual", nugget=0.1, psill=1.0, range=3000.0)
    (r,) = kp.krige_elements(x, y, {"Ag": column}, settings, GRID, log=logged.append)
    assert r.notes and any("Ag" in line and line in r.notes for line in logged)
    kp.write_report([r], settings, tmp_path / "r.html", crs_name="x", grid=GRID)
    import html

    assert html.escape(r.notes[0]) in (tmp_path / "r.html").read_text()
