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
                          kp.KrigeSettings(neighbours=0), GRID, log=lambda s: None)


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


def test_manual_variogram_skips_the_experimental_variogram(tmp_path, monkeypatch):
    from janja_plugin.core.geostatistics import variogram

    def refuse(*args, **kwargs):
        raise AssertionError("experimental variogram computed although the model was given by hand")

    monkeypatch.setattr(variogram, "experimental_variogram", refuse)
    x, y, z = field()
    settings = kp.KrigeSettings(fit="manual", nugget=0.01, psill=0.5, range=3000.0)
    logged = []
    (r,) = kp.krige_elements(x, y, {"Au": list(z)}, settings, GRID, log=logged.append)
    assert r.experimental is None and r.fit_se is None and r.fit.range == 3000.0
    assert any("not computed (variogram given by hand)" in line for line in logged)
    kp.write_report([r], settings, tmp_path / "r.html", crs_name="x", grid=GRID)
    assert "not computed, because the variogram was given by hand" in (tmp_path / "r.html").read_text()


def test_default_neighbourhood_follows_the_number_of_samples(tmp_path):
    small = field(n=60)
    (r,) = kp.krige_elements(*small[:2], {"Au": list(small[2])}, kp.KrigeSettings(), GRID, log=lambda s: None)
    (g,) = kp.krige_elements(*small[:2], {"Au": list(small[2])}, kp.KrigeSettings(neighbours=0), GRID,
                             log=lambda s: None)
    assert "global" in r.neighbourhood and "automatically" in r.neighbourhood
    np.testing.assert_array_equal(r.prediction, g.prediction)
    big = field(n=kp.AUTO_GLOBAL_MAX + 1)
    (r,) = kp.krige_elements(*big[:2], {"Au": list(big[2])}, kp.KrigeSettings(), GRID, log=lambda s: None)
    (k,) = kp.krige_elements(*big[:2], {"Au": list(big[2])}, kp.KrigeSettings(neighbours=kp.AUTO_NEIGHBOURS),
                             GRID, log=lambda s: None)
    (g,) = kp.krige_elements(*big[:2], {"Au": list(big[2])}, kp.KrigeSettings(neighbours=0), GRID,
                             log=lambda s: None)
    assert r.neighbourhood.startswith(f"{kp.AUTO_NEIGHBOURS} nearest samples, chosen automatically")
    assert kp.stack_tags([r], kp.KrigeSettings())["JANJA_NEIGHBOURHOOD"] == r.neighbourhood
    np.testing.assert_array_equal(r.prediction, k.prediction)
    assert not np.array_equal(r.prediction, g.prediction)
    kp.write_report([r], kp.KrigeSettings(), tmp_path / "r.html", crs_name="x", grid=GRID)
    assert f"neighbourhood: {kp.AUTO_NEIGHBOURS} nearest samples, chosen automatically for 501 samples" in \
        (tmp_path / "r.html").read_text()
    with pytest.raises(JanjaInputError, match="-1 \\(automatic\\)"):
        kp.krige_elements(*small[:2], {"Au": list(small[2])}, kp.KrigeSettings(neighbours=-2), GRID,
                          log=lambda s: None)


def test_sampled_variogram_error_reaches_the_report(tmp_path, monkeypatch):
    from janja_plugin.core.geostatistics import variogram

    monkeypatch.setattr(variogram, "EXACT_MAX_PAIRS", 1000)  # 60 samples: 1,770 pairs, so sampled
    monkeypatch.setattr(variogram, "SAMPLED_PAIRS", 200_000)
    x, y, z = field()
    (r,) = kp.krige_elements(x, y, {"Au": list(z)}, kp.KrigeSettings(), GRID, log=lambda s: None)
    assert r.experimental.sampled and set(r.fit_se) >= {"range", "sill", "nugget"}
    assert r.fit_se["sill"] > 0 and r.fit_se["batches"] == variogram.SAMPLE_BATCHES
    kp.write_report([r], kp.KrigeSettings(), tmp_path / "r.html", crs_name="x", grid=GRID)
    text = (tmp_path / "r.html").read_text()
    assert "200,000 random pairs (seed" in text and f"range SE {r.fit_se['range']:.4g} m" in text
    assert "experimental variogram: sampled pairs" in text
