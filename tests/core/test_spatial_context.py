"""The label-free spatial-context anomaly map (core/anomaly/spatial_context.py, janja:spatial_anomaly): a planted
multi-element halo ranks above the background and above every single element, the sign rule, nodata, seeding,
refusals, and the detection benchmark measuring this very function."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from janja_plugin.core.anomaly import spatial_context as sc
from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.evaluation.evaluate import auc_mann_whitney
from janja_plugin.core.smoothing import smooth

CELL, SPACING = 100.0, 300.0  # samples every 3 cells: windows of 3, 6 and 12 cells
NAMES = ["Au_ppb", "As_ppm", "Sb_ppm", "Cu_ppm"]


def field(shape, rng, sigma):
    f = gaussian_filter(rng.normal(size=shape), sigma)
    return (f - f.mean()) / f.std()


def bumps(shape, centres, radius):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return sum(np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * radius ** 2)) for r, c in centres)


def planted(seed, size=90, n_halo=6, radius=4.0):
    """Six halos where Au, As and Sb rise together over a short-range lithological pattern in which As follows
    Au and Sb opposes it (Cu opposes it too). The lithology makes Au and As highs everywhere, each within the
    bulk's range, so no element alone separates the halos; what is unusual there is the combination (Sb up
    with Au and As) around Au above its median. Returns (bands, halo cells, background cells)."""
    rng = np.random.default_rng(seed)
    shape = (size, size)
    centres = [(int(s // size), int(s % size)) for s in rng.choice(size * size, n_halo, replace=False)]
    halo = bumps(shape, centres, radius)
    lith = field(shape, rng, 1.5)
    au = lith + 0.3 * field(shape, rng, 2.0) + 1.5 * halo
    as_ = lith + 0.3 * field(shape, rng, 2.0) + 1.0 * halo
    sb = -lith + 0.3 * field(shape, rng, 2.0) + 1.0 * halo
    cu = -lith + field(shape, rng, 3.0)
    yy, xx = np.mgrid[0:size, 0:size]
    near = np.zeros(shape, bool)
    for r, c in centres:
        near |= (yy - r) ** 2 + (xx - c) ** 2 <= (2.5 * radius) ** 2
    return [10 ** (1 + 0.3 * v) for v in (au, as_, sb, cu)], halo > 0.6, ~near


def auc(score, pos, neg):
    ok = np.isfinite(score)
    return auc_mann_whitney(score[pos & ok], score[neg & ok])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_halo_ranks_above_the_background_and_above_every_single_element(seed):
    bands, halo, background = planted(seed)
    result = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0)
    ours = auc(result.score, halo, background)
    singles = {n: auc(b, halo, background) for n, b in zip(NAMES, bands)}
    assert ours > 0.85, (ours, singles)
    assert ours > max(singles.values()) + 0.04, (ours, singles)


def test_sign_rule_negative_where_the_target_window_is_below_its_median():
    bands, _, _ = planted(0)
    result = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0)
    ok = result.valid
    up = result.target_window[ok] > 0
    assert 0.3 < up.mean() < 0.7
    np.testing.assert_array_equal(result.score[ok][up], result.distance[ok][up])
    np.testing.assert_array_equal(result.score[ok][~up], -result.distance[ok][~up])
    assert np.all(result.distance[ok] > 0)
    # the target decides the sign: the same stack read for Sb (which opposes Au in the background) flips it
    other = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 2)
    np.testing.assert_allclose(np.abs(other.score[ok]), result.distance[ok])  # same features, same distance
    assert np.mean(np.sign(other.score[ok]) != np.sign(result.score[ok])) > 0.5


def test_target_only_method_reads_only_the_target():
    bands, _, _ = planted(1)
    result = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0, method=sc.TARGET)
    shuffled = [bands[0]] + [np.random.default_rng(5).permutation(b.ravel()).reshape(b.shape) for b in bands[1:]]
    again = sc.spatial_context_score(shuffled, NAMES, CELL, SPACING, 0, method=sc.TARGET)
    np.testing.assert_array_equal(result.score, again.score)
    assert result.n_features == 5 and len(result.sigmas_cells) == 4
    assert sc.spatial_context_score(bands[:1], NAMES[:1], CELL, SPACING, 0, method=sc.TARGET).score.shape == (90, 90)


def test_nodata_cells_stay_nodata_and_inputs_are_not_modified():
    bands, _, _ = planted(2)
    bands[1][10:20, 30:45] = np.nan  # a gap in As only
    bands[3][0, :] = np.nan  # Cu missing on the first row
    copies = [b.copy() for b in bands]
    result = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0)
    gap = ~np.all(np.isfinite(np.stack(bands)), axis=0)
    assert gap.sum() == 15 * 10 + 90
    assert np.all(np.isnan(result.score[gap])) and np.all(np.isnan(result.distance[gap]))
    assert np.all(np.isfinite(result.score[~gap]))
    for b, c in zip(bands, copies):
        np.testing.assert_array_equal(b, c)


def test_seeded_runs_are_identical():
    bands, _, _ = planted(0)
    a = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0)
    b = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0)
    np.testing.assert_array_equal(a.score, b.score)
    c = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0, seed=7)
    np.testing.assert_allclose(c.score, a.score, rtol=0.2, atol=0.2)  # another MCD search, the same map


def test_window_smoothing_leaves_nodata_out():
    band = np.ones((20, 20))
    band[:, 10:] = np.nan
    out = smooth(band, 3.0)
    np.testing.assert_allclose(out[:, :10], 1.0)  # a mean of ones next to a gap is one, not diluted by zeros
    assert np.all(np.isnan(out[:, 10:]))


def test_sample_spacing_is_the_median_nearest_neighbour_distance():
    x, y = np.meshgrid(np.arange(10) * 250.0, np.arange(8) * 250.0)
    x, y = np.r_[x.ravel(), 0.0], np.r_[y.ravel(), 0.0]  # a duplicate location is counted once
    assert sc.sample_spacing(x, y) == pytest.approx(250.0)
    with pytest.raises(JanjaInputError, match="at least two"):
        sc.sample_spacing([5.0, 5.0], [1.0, 1.0])


def hostile_cases():
    bands, _, _ = planted(0)
    allnan = [b.copy() for b in bands]
    allnan[2][:] = np.nan
    const = [b.copy() for b in bands]
    const[3][:] = 7.0
    return {
        "one band": (bands[:1], NAMES[:1], CELL, SPACING, 0, "only one band (Au_ppb)"),
        "all nodata band": (allnan, NAMES, CELL, SPACING, 0, "Band 'Sb_ppm' of the stack holds only nodata"),
        "constant band": (const, NAMES, CELL, SPACING, 0, "Band 'Cu_ppm' of the stack has the same value (7)"),
        "zero spacing": (bands, NAMES, CELL, 0.0, 0, "must be a positive distance in metres"),
        "negative spacing": (bands, NAMES, CELL, -300.0, 0, "must be a positive distance in metres"),
        "spacing under a cell": (bands, NAMES, CELL, 50.0, 0, "smaller than one cell of the stack (100 m)"),
        "window wider than the map": (bands, NAMES, CELL, 9000.0, 0, "as wide as the whole stack"),
        "target out of range": (bands, NAMES, CELL, SPACING, 4, "target band 5 does not exist: choose a band from 1"),
        "negative target": (bands, NAMES, CELL, SPACING, -1, "target band 0 does not exist"),
    }


@pytest.mark.parametrize("case", list(hostile_cases()))
def test_hostile_inputs_are_refused_with_a_sentence(case):
    bands, names, cell, spacing, target, expected = hostile_cases()[case]
    with pytest.raises(JanjaInputError) as err:
        sc.spatial_context_score(bands, names, cell, spacing, target)
    message = str(err.value)
    assert expected in message
    assert message.endswith(".") and "\n" not in message


def test_elements_mostly_below_detection_are_named_in_the_refusal():
    bands, _, _ = planted(0)
    for i in (1, 2, 3):  # 85 % of As, Sb and Cu at one substituted value
        bands[i] = np.where(bands[i] > np.percentile(bands[i], 85), bands[i], 1.0)
    with pytest.raises(JanjaInputError) as err:
        sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0)
    message = str(err.value)
    assert "As_ppm (85 % of the cells share one value), Sb_ppm (85 %" in message and "Cu_ppm (85 %" in message
    assert "Au_ppb (" not in message
    assert "Leave that element out" in message


def test_a_window_covering_half_the_map_is_a_warning():
    bands, _, _ = planted(0)
    result = sc.spatial_context_score(bands, NAMES, CELL, 1200.0, 0)  # 4 spacings = 48 cells on a 90-cell map
    assert len(result.notes) == 1 and "spans at least half of the stack" in result.notes[0]
    assert not sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0).notes


def test_percentile_classes_and_bad_percentiles():
    score = np.r_[np.arange(100.0) - 50, np.nan]
    classes, breaks = sc.percentile_classes(score, (50, 90))
    assert classes[-1] == 0 and set(np.unique(classes[:-1])) == {1, 2, 3}
    assert (classes == 3).sum() == 10 and breaks[0] == pytest.approx(-0.5)
    with pytest.raises(JanjaInputError, match="increasing"):
        sc.percentile_classes(score, (90, 50))


def test_the_report_states_the_benchmark_and_that_smoothed_au_is_better_on_wa():
    from janja_plugin.core.reporting.report import HtmlReport

    bands, _, _ = planted(0)
    result = sc.spatial_context_score(bands, NAMES, CELL, SPACING, 0)
    classes, breaks = sc.percentile_classes(result.score)
    rep = HtmlReport("t")
    sc.report_section(rep, result, classes, breaks)
    html = rep.html()
    for text in ("0.880", "0.927", "0.637", "0.736", "0.654", "bench/detect_bench.py", "still better", "<svg"):
        assert text in html, text


# ------------------------------------------------------------------ the benchmark measures this code

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def test_the_detection_benchmark_rows_are_this_function_and_unchanged():
    """bench/detect_bench.py's UNSUP_* rows are the shipped function's maps, and equal the feature-block
    construction the published numbers (WA 0.880, Tianshan 0.736) were measured with."""
    import detect_bench as db
    import detect_variants as dv

    survey = db.synthetic_survey(0, size=60, n_deposits=16)
    feats = db.Features(survey)
    rows = db.unsupervised_contenders(survey, feats)
    st = survey.stack
    ti, n_el = st.names.index(survey.target), len(st.names)
    signed = sc.spatial_context_score(st.data, st.names, st.cell, survey.spacing, ti)
    own = sc.spatial_context_score(st.data, st.names, st.cell, survey.spacing, ti, method=sc.TARGET)
    np.testing.assert_array_equal(rows[db.UNSUP_SIGNED], signed.score[feats.valid])
    np.testing.assert_array_equal(rows[db.UNSUP_TARGET], own.score[feats.valid])
    np.testing.assert_array_equal(rows[db.UNSUP_MCD], signed.distance[feats.valid])
    x = feats.blocks["multiscale"]  # the construction before the function existed
    d = dv.mcd_distance(x)
    np.testing.assert_array_equal(signed.score[feats.valid], np.where(x[:, n_el + ti] > 0, d, -d))
    dt = dv.mcd_distance(feats.blocks["multiscale8"][:, ti::n_el])
    np.testing.assert_array_equal(own.score[feats.valid], np.where(x[:, n_el + ti] > 0, dt, -dt))
