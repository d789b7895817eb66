"""The stride check: a stride-k map states the error of its interpolated cells, measured on a seeded sample.

The model sees one cell (window 1, input 1 x 1): its probability is a known function of the cell's value,
so the map is a known function of position. A smooth field gives a tiny error; a checkerboard gives,
at stride 2, an error of |p_black - p_white| on every interpolated cell whose colour differs from its
nodes' (r + c odd) and none on the others, which the check must find.
"""

import numpy as np
import pytest
from test_model_card import build_model, card_dict

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.inference import stride_check as sc
from janja_plugin.core.inference import windows as wn
from janja_plugin.core.raster_grid import Grid

MEAN, STD, SLOPE = 0.5, 0.4, 3.0  # log10 Au standardised with MEAN, STD; logit = SLOPE * z


def one_cell_model(tmp_path):
    card = card_dict(elements=(("Au_ppb", "ppb", "log10", MEAN, STD),), channels=1, size=1, window=1)
    build_model(tmp_path / "m.onnx", card, weights=(np.array([[0.0], [SLOPE]], np.float32),
                                                      np.zeros(2, np.float32)), pool=True)
    return mc.load_model(tmp_path / "m.onnx", threads=1)


def stack_of(z):
    """A one-element stack whose standardised log10 value is z (so p = sigmoid(SLOPE * z))."""
    return wn.ArrayStack((10 ** (MEAN + STD * np.asarray(z, float)))[None], ["Au_ppb"])


def p_of(z):
    return 1 / (1 + np.exp(-SLOPE * z))


def checkerboard(n):
    r, c = np.indices((n, n))
    return np.where((r + c) % 2 == 0, 1.0, -1.0)


def smooth(n):
    r, c = np.indices((n, n))
    return 0.03 * r - 0.02 * c + 0.3


def grid_of(n):
    return Grid(400000.0, 6500000.0, 250.0, n, n)


def test_checkerboard_error_is_the_known_one_and_warns(tmp_path):
    model = one_cell_model(tmp_path)
    n = 41  # odd: the stride-2 nodes are the even rows and columns, all of one colour
    stack = stack_of(checkerboard(n))
    values, _, stats, sample = sc.predict_and_check(model, stack, [0], 2, sample=10_000)
    # every interpolated cell checked: the figures are the truth, computed here by hand
    n_nodes, n_odd_odd = 21 * 21, 20 * 20
    n_interp = n * n - n_nodes
    n_wrong = n_interp - n_odd_odd  # r + c odd: the other colour than all its nodes
    jump = p_of(1.0) - p_of(-1.0)
    e = sc.measure(sample, breaks=[0.5, 0.8], top_threshold=0.9)
    assert e.n_sample == e.n_interpolated == n_interp == stats.n_interpolated
    assert e.mae == pytest.approx(n_wrong / n_interp * jump, abs=1e-6)
    assert e.p95 == pytest.approx(jump, abs=1e-6) and e.max == pytest.approx(jump, abs=1e-6)
    assert e.class_changed == pytest.approx(n_wrong / n_interp)
    assert e.top_changed == pytest.approx(n_wrong / n_interp)
    # top by 0.9: the black cells; every interpolated cell is black on the map (its nodes are) or exactly
    assert e.n_top == n_interp and e.top_mae == pytest.approx(e.mae)
    assert e.too_large
    assert "Stride 2 misplaces this map" in e.warning() and "Run at stride 1 (every cell classified)" in e.warning()
    # and against the stride-1 map itself
    exact, _, _ = wn.predict(model, stack, [0])
    truth = np.abs(values - exact)[sc.interpolated_cells(values, 2)]
    assert e.mae == pytest.approx(float(truth.mean()), abs=1e-6)


def test_default_sample_estimates_the_checkerboard_error(tmp_path):
    model = one_cell_model(tmp_path)
    stack = stack_of(checkerboard(41))
    _, _, stats, sample = sc.predict_and_check(model, stack, [0], 2)
    assert np.count_nonzero(~sample.top_stratum) == sc.SAMPLE_MIN  # 10 % of 441 windows is below the floor
    e = sc.measure(sample, breaks=[0.5, 0.8])
    share = 840 / 1240
    sd = np.sqrt(share * (1 - share) / e.n_sample)
    assert abs(e.class_changed - share) < 4 * sd
    assert e.p95 > 0.5 and e.too_large


def test_smooth_map_has_a_tiny_error_and_no_warning(tmp_path):
    model = one_cell_model(tmp_path)
    stack = stack_of(smooth(41))
    values, _, _, sample = sc.predict_and_check(model, stack, [0], 2, sample=10_000)
    e = sc.measure(sample, breaks=[0.5, 0.8], top_threshold=sc.top_threshold(values))
    exact, _, _ = wn.predict(model, stack, [0])
    truth = np.abs(values - exact)[sc.interpolated_cells(values, 2)]
    assert e.max == pytest.approx(float(truth.max()), abs=1e-6) and 0 < e.max < 0.01
    assert e.p95 < sc.P95_LIMIT and e.class_changed < sc.CLASS_LIMIT
    assert not e.too_large and e.warning() is None
    assert "interpolation error mean" in e.sentence()


def test_same_seed_same_cells_and_numbers(tmp_path):
    model = one_cell_model(tmp_path)
    z = checkerboard(41) + smooth(41)
    stack = stack_of(z)
    runs = [sc.predict_and_check(model, stack, [0], 2, seed=seed)[3] for seed in (7, 7, 8)]
    a, b, c = runs
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols)
    tags_a, tags_b = sc.measure(a, [0.5, 0.8]).tags(), sc.measure(b, [0.5, 0.8]).tags()
    tags_a.pop("janja_stride_seconds"), tags_b.pop("janja_stride_seconds")  # time taken, not a result
    assert tags_a == tags_b
    assert not (np.array_equal(a.rows, c.rows) and np.array_equal(a.cols, c.cols))


def test_stride_1_costs_nothing_and_says_every_cell(tmp_path):
    model = one_cell_model(tmp_path)
    stack = stack_of(checkerboard(21))
    _, _, stats, sample = sc.predict_and_check(model, stack, [0], 1)
    assert sample is None and stats.n_windows == 21 * 21
    result = pr.run_prospectivity(stack, model, pr.ProspectivitySettings(stride=1), grid=grid_of(21),
                                  crs_wkt="EPSG:28350")
    assert result.stride_error.exact and result.stride_error.n_windows == 0
    assert result.stats.n_windows == 21 * 21
    assert result.tags()["janja_stride"] == "1"
    assert result.tags()["janja_stride_check"] == "every cell classified"
    assert "every cell classified" in result.stride_error.sentence()


def test_check_costs_a_tenth_of_the_run_and_only_the_sample(tmp_path):
    model = one_cell_model(tmp_path)
    n = 151
    stack = stack_of(smooth(n))
    _, _, stats, sample = sc.predict_and_check(model, stack, [0], 2)
    assert stats.n_windows == 76 * 76  # the map's own windows are untouched by the check
    uniform = int(np.count_nonzero(~sample.top_stratum))
    assert uniform == round(sc.SAMPLE_SHARE * stats.n_windows)
    assert sample.n_windows == sample.rows.size == uniform + round(sc.TOP_EXTRA_SHARE * uniform)
    assert sample.n_windows / stats.n_windows <= sc.SAMPLE_SHARE * (1 + sc.TOP_EXTRA_SHARE) + 1e-3
    # sampled cells are interpolated cells only (never a node, whose value is exact anyway)
    assert not np.any((sample.rows % 2 == 0) & (sample.cols % 2 == 0))


def test_interpolated_cells_are_the_engines(tmp_path):
    model = one_cell_model(tmp_path)
    z = smooth(23)
    z[6:10, 6:10] = np.nan  # nodata: a block of missing nodes; (7, 7) is an orphan at stride 3
    z[7:9, 7:9] = 0.5
    data = np.where(np.isfinite(z), 10 ** (MEAN + STD * np.nan_to_num(z)), np.nan)
    stack = wn.ArrayStack(data[None], ["Au_ppb"])
    for stride in (2, 3, 4):
        values, _, stats = wn.predict(model, stack, [0], stride=stride)
        assert sc.interpolated_cells(values, stride).sum() == stats.n_interpolated


def test_progress_never_goes_back_and_cancel_works_in_the_check(tmp_path):
    model = one_cell_model(tmp_path)
    stack = stack_of(smooth(61))
    seen = []
    sc.predict_and_check(model, stack, [0], 2, batch_size=16, tile_rows=8,
                         progress=lambda f: seen.append(f) and False)
    assert seen == sorted(seen) and seen[-1] == 1.0 and any(0.9 < f < 1.0 for f in seen)
    calls = []

    def cancel_in_check(fraction):
        calls.append(fraction)
        return fraction > 0.9

    with pytest.raises(wn.Cancelled):
        sc.predict_and_check(model, stack, [0], 2, batch_size=16, tile_rows=8, progress=cancel_in_check)
    assert max(calls) < 1.0


@pytest.mark.parametrize("bad", [-1, 2.5, "100", True])
def test_a_bad_sample_size_is_refused_before_the_run(tmp_path, bad):
    model = one_cell_model(tmp_path)
    calls = []
    with pytest.raises(JanjaInputError, match="whole number of cells"):
        sc.predict_and_check(model, stack_of(smooth(9)), [0], 2, sample=bad, progress=calls.append)
    assert not calls


def test_probe_equals_the_full_runs_check(tmp_path):
    """The probe interpolates a cell from its nodes exactly as the engine does: with every cell sampled
    its figures are the full run's."""
    model = one_cell_model(tmp_path)
    rng = np.random.default_rng(2)
    z = smooth(29) + 0.3 * rng.normal(size=(29, 29))
    stack = stack_of(z)
    probe = sc.probe_strides(model, stack, [0], [2, 3], n_sample=29 * 29)
    for stride in (2, 3):
        _, _, _, sample = sc.predict_and_check(model, stack, [0], stride, sample=10_000)
        full = sc.measure(sample)
        assert probe[stride].n_sample == full.n_sample
        for key in ("mae", "p95", "max"):
            assert getattr(probe[stride], key) == pytest.approx(getattr(full, key), abs=1e-6)


def test_prospectivity_result_carries_the_error_in_tags_and_report(tmp_path):
    from janja_plugin.core.reporting.report import HtmlReport

    model = one_cell_model(tmp_path)
    result = pr.run_prospectivity(stack_of(checkerboard(41)), model,
                                  pr.ProspectivitySettings(stride=2, stride_sample=500), grid=grid_of(41),
                                  crs_wkt="EPSG:28350")
    tags = result.tags()
    for key in ("janja_stride", "janja_stride_mae", "janja_stride_p95", "janja_stride_max", "janja_stride_sample"):
        assert key in tags
    assert tags["janja_stride"] == "2" and tags["janja_stride_sample"] == "500"
    assert float(tags["janja_stride_p95"]) == pytest.approx(p_of(1.0) - p_of(-1.0), abs=1e-5)
    rep = HtmlReport("t")
    pr.report_section(rep, result)
    html = "".join(rep.parts)
    assert "Stride 2: measured on 500 of the 1,240 interpolated cells" in html
    assert html.index("Stride 2 misplaces") < html.index("Probability histogram")


def test_record_round_trips_through_raster_metadata():
    e = sc.StrideError(stride=4, n_sample=321, n_interpolated=9000, mae=0.01, p95=0.07, max=0.4,
                       class_changed=0.02, top_changed=None, seed=3, n_top=17, top_mae=0.2)
    back = sc.StrideError.from_tags(e.tags())
    assert back.tags() == e.tags() and back.too_large and back.top_changed is None and back.n_top == 17
    assert "Run at stride ≤ 2 and read this line again" in back.warning()
    assert sc.StrideError.from_tags({"janja_stride": "1"}).exact
    assert sc.StrideError.from_tags({"janja_model": "x"}) is None
    assert sc.StrideError.from_tags({"janja_stride": "4", "janja_stride_mae": "oops"}) is None


def test_demo_stride_is_chosen_by_error_not_only_time():
    ok = sc.StrideError(stride=8, n_sample=600, mae=0.004, p95=0.03, max=0.3, class_changed=0.01)
    assert sc.choose_by_error(8, ok, {})[0] == 8  # within the budget and within the error: kept
    bad = sc.StrideError(stride=8, n_sample=600, mae=0.02, p95=0.09, max=0.9, class_changed=0.02)
    probe = {6: sc.StrideError(stride=6, n_sample=190, p95=0.07), 4: sc.StrideError(stride=4, n_sample=180, p95=0.04),
             2: sc.StrideError(stride=2, n_sample=150, p95=0.01)}
    stride, reason = sc.choose_by_error(8, bad, probe)
    assert stride == 4 and "0.090" in reason and "stride 4" in reason
    classes = sc.StrideError(stride=8, n_sample=600, p95=0.02, class_changed=0.08)  # p95 fine, classes not
    assert sc.choose_by_error(8, classes, probe)[0] == 4
    none_pass = {k: sc.StrideError(stride=k, n_sample=100, p95=0.2) for k in (6, 4, 2)}
    assert sc.choose_by_error(8, bad, none_pass)[0] == 1
    assert sc.strides_below(8) == [6, 4, 2] and sc.strides_below(2) == []


def test_measure_by_hand():
    sample = sc.StrideSample(stride=3, rows=np.arange(6), cols=np.arange(6), seed=0, n_interpolated=50, n_windows=6,
                             seconds=0.0, interpolated=np.array([0.1, 0.2, 0.55, 0.85, 0.95, np.nan]),
                             exact=np.array([0.1, 0.3, 0.45, 0.9, 0.7, 0.2]))
    e = sc.measure(sample, breaks=[0.5, 0.8], top_threshold=0.8)
    err = np.array([0.0, 0.1, 0.1, 0.05, 0.25])  # the NaN cell is left out
    assert e.n_sample == 5 and e.mae == pytest.approx(err.mean()) and e.max == pytest.approx(0.25)
    assert e.p95 == pytest.approx(np.percentile(err, 95))
    assert e.class_changed == pytest.approx(2 / 5)  # 0.55 -> 0.45 (moderate -> low), 0.95 -> 0.7 (high -> moderate)
    assert e.top_changed == pytest.approx(1 / 5)  # 0.95 in the top, 0.7 not
    assert e.n_top == 2 and e.top_mae == pytest.approx((0.05 + 0.25) / 2)
    assert sc.measure(sample).class_changed is None and sc.measure(sample).top_mae is None


def test_sample_0_is_stated_as_unmeasured(tmp_path):
    model = one_cell_model(tmp_path)
    _, _, stats, sample = sc.predict_and_check(model, stack_of(checkerboard(21)), [0], 2, sample=0)
    e = sc.measure(sample, [0.5, 0.8])
    assert e.n_sample == 0 and sample.n_windows == 0 and not e.too_large
    assert "error was not measured" in e.sentence() and f"{stats.n_interpolated:,} cells interpolated" in e.sentence()


def test_target_cells_are_judged_on_their_own_when_the_background_dilutes_the_error():
    """Measured on the bundled WA model: p95 0.006 map-wide but a mean error of 0.115 in the top 5 %."""
    from janja_plugin.core.inference.stride_check import StrideError, choose_by_error

    diluted = StrideError(stride=4, n_sample=2000, n_interpolated=40000, mae=0.006, p95=0.006, max=0.95,
                          class_changed=0.005, n_top=100, top_mae=0.115)
    assert diluted.too_large and "top 5 % of the map" in diluted.warning()
    assert choose_by_error(4, diluted, {})[0] == 1
    few = StrideError(stride=4, n_sample=2000, n_interpolated=40000, p95=0.006, n_top=5, top_mae=0.3)
    assert not few.too_large and few.warning() is None  # 5 top cells: too few to judge
    calm = StrideError(stride=4, n_sample=2000, n_interpolated=40000, p95=0.006, n_top=100, top_mae=0.01)
    assert choose_by_error(4, calm, {})[0] == 4


def top_heavy_error(n=121):
    """A smooth map whose top 5 % carries a checkerboard: the error sits only where targets are drawn."""
    r, c = np.indices((n, n))
    z = -2.0 + 0.005 * smooth(n)  # a flat, low background (p about 0.003)
    hot = (r > n - 30) & (c < 30)  # about 6 % of the map, its highest values (p 0.43 or 0.96)
    return np.where(hot, 0.5 + 0.6 * checkerboard(n), z)


def test_a_top_stratum_lets_the_check_judge_the_top_cells_a_uniform_sample_misses(tmp_path):
    """A uniform 200-cell sample holds ~10 of the top 5 %: too few to judge; the top stratum adds enough, and
    its weighted mean error matches the true mean error over the map's top cells."""
    model = one_cell_model(tmp_path)
    stack = stack_of(top_heavy_error())
    values, _, _, sample = sc.predict_and_check(model, stack, [0], 2, sample=200)
    threshold = sc.top_threshold(values)
    e = sc.measure(sample, breaks=[0.5, 0.8], top_threshold=threshold)
    uniform_top = np.count_nonzero(~sample.top_stratum & (sample.interpolated >= threshold))
    assert uniform_top < sc.TOP_MIN_SAMPLE <= e.n_top  # the uniform stratum alone could not judge them
    exact, _, _ = wn.predict(model, stack, [0])
    interp = sc.interpolated_cells(values, 2)
    top = interp & ((values >= threshold) | (exact >= threshold))
    truth = float(np.abs(values - exact)[top].mean())
    assert truth > sc.TOP_MAE_LIMIT and e.targets_off and e.too_large
    assert e.top_mae == pytest.approx(truth, rel=0.25)
    # map-wide figures come from the uniform stratum only
    u = ~sample.top_stratum
    assert e.n_sample == np.count_nonzero(u)
    assert e.mae == pytest.approx(float(np.abs(sample.interpolated[u] - sample.exact[u]).mean()))


def test_the_stratified_estimate_of_the_top_error_is_unbiased_over_seeds():
    """Weights are 1 / inclusion probability: averaged over seeds the estimate equals the population value, which
    an unweighted mean over both strata would overstate here (cells above the threshold on the map err more)."""
    rng = np.random.default_rng(3)
    n = 200
    values = rng.random((n, n))
    candidates = np.ones((n, n), bool)
    threshold = sc.top_threshold(values)
    exact = values.copy()
    mapped_top = values >= threshold
    exact[mapped_top] -= 0.2  # the map overstates its top cells by 0.2
    near = (values < threshold) & (values >= threshold - 0.01)
    exact[near] += 0.05  # and understates some just below, which the stride-1 map puts in its top
    pop_top = mapped_top | (exact >= threshold)
    truth = float(np.abs(values - exact)[pop_top].mean())
    estimates = []
    for seed in range(40):
        rows, cols, stratum, weights = sc.draw_stratified(candidates, values, 400, seed=seed)
        s = sc.StrideSample(stride=2, rows=rows, cols=cols, interpolated=values[rows, cols],
                            exact=exact[rows, cols], n_interpolated=n * n, n_windows=rows.size, seconds=0.0,
                            seed=seed, top_stratum=stratum, weights=weights)
        estimates.append(sc.measure(s, top_threshold=threshold).top_mae)
    assert np.mean(estimates) == pytest.approx(truth, rel=0.05)
