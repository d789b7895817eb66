"""The streamed kriging (janja:krige's path) gives every verdict of the whole-grid one: the same refusals,
with no file left behind, the same warnings and notes, and the same class breaks (no QGIS)."""

import numpy as np
import pytest
from hostile_data import survey

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import krige_pipeline as kp
from janja_plugin.core.geostatistics import tiled_kriging as tk
from janja_plugin.core.raster_grid import grid_for_extent

WKT = "EPSG:28992"
X, Y, ZN = survey(n=150)  # 3 km square, about 250 m between samples
NEAR = grid_for_extent(X.min(), Y.min(), X.max(), Y.max(), 100.0, margin=200.0)
EAST = grid_for_extent(X.min(), Y.min(), X.max() + 4000.0, Y.max(), 100.0)  # a third of it far from samples


def east_only(grid):
    """Mask of the cells more than 1.5 km east of every sample."""
    cx, _ = grid.cell_centres()
    return (cx > X.max() + 1500.0).reshape(grid.nrows, grid.ncols)


def both_paths(tmp_path, settings, grid=NEAR, columns=None, inside=None, x=X, y=Y):
    """(whole-grid outcome, streamed outcome): results or the refusal's sentence, with everything logged."""
    columns = columns or {"zn": list(ZN)}
    outcomes = []
    for streamed in (False, True):
        said = []

        def warn(s, said=said):
            said.append("WARN " + s)

        try:
            if streamed:
                res = tk.krige_elements_to_files(
                    x, y, columns, settings, grid, tmp_path / "p.tif", tmp_path / "v.tif", WKT, inside=inside,
                    tile_rows=9, log=said.append, warn=warn, log_path=tmp_path / "l.tif")
            else:
                res = kp.krige_elements(x, y, columns, settings, grid, inside=inside, log=said.append,
                                        warn=warn)
            outcomes.append((res, said))
        except JanjaInputError as exc:
            outcomes.append((str(exc), said))
    return outcomes


REFUSALS = {
    "extent far from the samples": dict(grid=grid_for_extent(1e6, 1e6, 1.003e6, 1.003e6, 100.0)),
    "search radius below the spacing": dict(settings=kp.KrigeSettings(search_radius=10.0)),
    "manual model without its numbers": dict(settings=kp.KrigeSettings(fit="manual", range=500.0)),
    "all values equal": dict(columns={"zn": [5.0] * X.size}),
    "Gaussian model without nugget: values far outside the data": dict(settings=kp.KrigeSettings(
        model="gaussian", fit="manual", nugget=0.0, psill=0.4, range=800.0, neighbours=16)),
    "lognormal back-transform overflow": dict(settings=kp.KrigeSettings(
        model="exponential", fit="manual", nugget=0.0, psill=3000.0, range=40.0, neighbours=16)),
    "no cell within the search radius": dict(settings=kp.KrigeSettings(neighbours=16, search_radius=600.0),
                                             grid=EAST, inside=east_only(EAST)),
}
PHRASES = ["km from the nearest sample", "smaller than the typical distance", "nugget, partial sill",
           "nothing to krige", "far outside the data", "back-transform overflowed", "no cell has a sample"]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a refusal is a sentence, not numpy overflow noise in the log
@pytest.mark.parametrize("case, phrase", zip(REFUSALS, PHRASES))
def test_every_refusal_of_the_whole_grid_run_happens_streamed_and_leaves_no_file(tmp_path, case, phrase):
    kwargs = dict(REFUSALS[case])
    settings = kwargs.pop("settings", kp.KrigeSettings(neighbours=16))
    (whole, said_whole), (streamed, said_streamed) = both_paths(tmp_path, settings, **kwargs)
    assert isinstance(whole, str) and phrase in whole
    assert streamed == whole and said_streamed == said_whole
    assert list(tmp_path.iterdir()) == []  # not even a hidden temporary file


def censored_column():
    rng = np.random.default_rng(3)
    column = [f"{v:.2f}" for v in ZN]
    for i in rng.choice(ZN.size, 130, replace=False):
        column[i] = "<50"
    return column


def range_warning_survey():
    """test_censoring_krige's field: zeros substituted by a tiny value inflate the log variance."""
    rng = np.random.default_rng(4)
    x, y = rng.uniform(0, 10_000, 120), rng.uniform(0, 10_000, 120)
    z = np.exp(np.sin(x / 3000) + np.cos(y / 2500) + 0.1 * rng.standard_normal(120))
    column = list(5 + 45 * (z - z.min()) / (z.max() - z.min()))
    column[:30] = [0.0] * 30
    column[30] = 0.011
    return x, y, {"Au": column}


WARNINGS = {
    "cells without a sample within the radius": (
        dict(settings=kp.KrigeSettings(neighbours=16, search_radius=600.0), grid=EAST), "had too few samples"),
    "mostly censored": (dict(columns={"zn": censored_column()}), "% censored"),
    "cells beyond the sample range": (
        dict(grid=grid_for_extent(0, 0, 10_000, 10_000, cell=500.0), settings=kp.KrigeSettings()),
        "after the lognormal back-transform"),
}


@pytest.mark.parametrize("case", WARNINGS)
def test_warnings_notes_and_class_breaks_are_the_same_streamed(tmp_path, case):
    kwargs, phrase = WARNINGS[case]
    kwargs = dict(kwargs)
    settings = kwargs.pop("settings", kp.KrigeSettings(neighbours=16))
    if case == "cells beyond the sample range":
        x, y, columns = range_warning_survey()
        kwargs.update(x=x, y=y, columns=columns)
    (whole, said_whole), (streamed, said_streamed) = both_paths(tmp_path, settings, **kwargs)
    assert any(phrase in s for s in said_whole if s.startswith("WARN "))
    assert said_streamed == said_whole
    for w, s in zip(whole, streamed):
        assert s.notes == w.notes and any(phrase in n for n in s.notes)
        assert s.classes == w.classes
        # unchanged from the breaks janja:krige styled with when it held the whole grid
        label, unit, _, var_unit = kp.layer_names(w.name, settings.transform)
        assert w.classes == {"prediction": kp.style_classes(w.prediction, unit),
                             "variance": kp.style_classes(w.variance, var_unit)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.tif", "p.tif", "v.tif"]


def test_decimated_sample_is_the_same_whatever_the_pieces_and_exact_below_the_cap():
    values = np.arange(1000.0)
    values[[3, 500]] = np.nan  # skipped, not counted
    finite = values[np.isfinite(values)]
    whole, pieces = kp._Decimated(100), kp._Decimated(100)
    whole.add(values)
    for piece in np.array_split(values, [7, 8, 300, 301, 999]):
        pieces.add(piece)
    assert np.array_equal(whole.values(), pieces.values())
    sample, extremes = whole.values()[:-2], whole.values()[-2:]
    assert whole.level == 4 and 50 <= sample.size <= 100  # a sixteenth of 998 on average
    assert np.isin(sample, finite).all() and np.all(np.diff(sample) > 0)  # in arrival order
    assert list(extremes) == [0.0, 999.0]  # the outer breaks enclose every cell
    gaps = np.diff(sample)
    assert gaps.std() > 5  # not every 16th: no period to alias with the grid's rows
    small = kp._Decimated(2000)
    small.add(values)
    assert small.level == 0 and np.array_equal(small.values(), finite)


def test_class_breaks_beyond_the_sample_cap_are_within_sampling_error(tmp_path, monkeypatch):
    """Over STYLE_SAMPLE_MAX cells the breaks come from a hashed sample of cap/2 to cap cells: each break's
    rank among all cells is within 3 binomial standard errors of its target (at the real cap of a million,
    under 0.15 percentile points at the median). Here 100 x 95 cells, the cap at 2,000."""
    monkeypatch.setattr(kp, "STYLE_SAMPLE_MAX", 2000)
    grid = grid_for_extent(X.min(), Y.min(), X.max(), Y.max(), 30.0, margin=0.0)
    (whole, _), (streamed, _) = both_paths(tmp_path, kp.KrigeSettings(neighbours=16), grid=grid)
    worst = 0.0
    for key, band in (("prediction", whole[0].prediction), ("variance", whole[0].variance)):
        values = band[np.isfinite(band)]
        exact, _ = kp.style_classes(values)
        sampled, _ = streamed[0].classes[key]
        assert sampled != exact  # the cap did apply
        assert (sampled[0], sampled[-1]) == (exact[0], exact[-1])  # P0 and P100 exact: every cell classed
        _, pcts = kp.percentile_breaks(values)
        n = 1000  # at least cap / 2 sampled cells
        for b, p in zip(sampled, pcts):
            rank = 100.0 * np.mean(values <= b)
            se = 100.0 * np.sqrt(max(p, 1) / 100 * (1 - min(p, 99) / 100) / n)
            worst = max(worst, abs(rank - p) / se)
            assert abs(rank - p) <= 3 * se, (key, p, rank, se)
    print(f"largest break error: {worst:.2f} standard errors")
