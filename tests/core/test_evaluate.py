"""Evaluation against deposits: AUC, the OpenGADBench protocol on the WA survey, success rate, P–A."""

import csv

import numpy as np
import pytest
from testdata import SAMPLE_DATA

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.evaluation import evaluate as ev
from janja_plugin.core.reporting.report import HtmlReport


def read_wa():
    with open(SAMPLE_DATA / "wa_stream_sediments.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(SAMPLE_DATA / "wa_au_sites.csv", newline="") as fh:
        sites = list(csv.DictReader(fh))
    xy = np.array([[float(r["X"]), float(r["Y"])] for r in rows])
    dep = np.array([[float(r["X"]), float(r["Y"])] for r in sites])
    return rows, xy, dep


def test_auc_is_mann_whitney_with_half_ties():
    pos, neg = np.array([3.0, 2.0, 2.0, 5.0]), np.array([1.0, 2.0, 4.0])
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in pos for n in neg]
    assert ev.auc_mann_whitney(pos, neg) == pytest.approx(np.mean(pairs))


def test_trapezoid_area_exact_on_a_piecewise_linear_curve():
    # uneven steps: 0.2 * 0.5 + 0.8 * 1 (the success-rate area; no np.trapz, which numpy 2 dropped)
    assert ev.trapezoid_area([0.0, 1.0, 1.0], [0.0, 0.2, 1.0]) == pytest.approx(0.9)
    assert ev.success_rate_curve([4.0, 3.0, 2.0, 1.0], [4.0]).auc == pytest.approx(1 - 0.25 / 2)


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 40).round(1), rng.normal(0, 1, 300).round(1)  # rounded: ties
    roc = ev.roc_curve(pos, neg)
    assert (roc.false_positive_rate[0], roc.true_positive_rate[0]) == (0.0, 0.0)
    assert (roc.false_positive_rate[-1], roc.true_positive_rate[-1]) == (1.0, 1.0)
    assert ev.trapezoid_area(roc.true_positive_rate, roc.false_positive_rate) == pytest.approx(roc.auc)


@pytest.mark.parametrize("element, mean, sd", [("Au_ppm", 0.73, 0.03), ("Ag_ppm", 0.75, 0.05)])
def test_opengadbench_protocol_on_the_wa_survey(element, mean, sd):
    """Acceptance check of issue 4: log Au 0.73 ± 0.03 and log Ag 0.75 ± 0.05 (all 1392 rows,
    -9999 missing, <= 0 -> half the smallest positive value, nearest sample by great circle)."""
    rows, xy, dep = read_wa()
    values = ev.half_min_positive([float(r[element]) for r in rows])
    res = ev.sample_protocol_auc(xy[:, 0], xy[:, 1], np.log10(values), dep[:, 0], dep[:, 1],
                                 merge_duplicates=False)  # the benchmark keeps duplicate rows
    assert res.geographic and res.n_draws == 20 and res.seed == 42
    assert res.min_distance_km == 5.0 and "sample spacing 0.934 km" in res.min_distance_rule
    assert res.n_deposits_scored == 32 and res.n_eligible_negatives == 1341
    assert res.auc_mean == pytest.approx(mean, abs=0.01)
    assert res.auc_sd == pytest.approx(sd, abs=0.01)
    assert 0.75 < res.deposit_distance_km.min() and res.deposit_distance_km.max() < 7.8  # PROVENANCE.md: 0.8-7.7 km


def test_protocol_projected_coordinates_and_refusals():
    rng = np.random.default_rng(1)
    sx, sy = rng.uniform(0, 100_000, 500), rng.uniform(0, 100_000, 500)  # metres
    dx, dy = np.array([20_000.0, 70_000.0]), np.array([30_000.0, 60_000.0])
    near = np.hypot(sx[:, None] - dx, sy[:, None] - dy).min(axis=1)
    scores = -near  # higher next to deposits
    res = ev.sample_protocol_auc(sx, sy, scores, dx, dy)
    assert not res.geographic and res.auc_mean == 1.0
    with pytest.raises(JanjaInputError, match="no negatives"):
        ev.sample_protocol_auc(sx, sy, scores, dx, dy, min_distance_km=500.0)
    with pytest.raises(JanjaInputError, match="one score per sample"):
        ev.sample_protocol_auc(sx, sy, scores[:-1], dx, dy)


def test_missing_scores_are_left_out_not_ranked_lowest():
    rng = np.random.default_rng(2)
    sx, sy = rng.uniform(0, 50_000, 300), rng.uniform(0, 50_000, 300)
    scores = rng.random(300)
    scores[::3] = np.nan
    at = np.arange(1, 300, 30)  # deposits on samples that have a score
    dx, dy = sx[at] + 1.0, sy[at]
    res = ev.sample_protocol_auc(sx, sy, scores, dx, dy, min_distance_km=1.0)
    assert np.isfinite(res.aucs).all() and res.n_negatives_per_draw.min() < 10
    assert res.n_deposits_scored == np.isfinite(res.deposit_scores).sum()
    lowest = ev.sample_protocol_auc(sx, sy, np.where(np.isnan(scores), -1.0, scores), dx, dy, min_distance_km=1.0)
    assert lowest.auc_mean > res.auc_mean  # ranking missing values lowest flatters the score


def raster_case():
    """A 50 x 40 map, 1 km cells, scores rising towards (10, 10) km; deposits near there and one far."""
    xs = np.arange(50) * 1000.0 + 500.0
    ys = np.arange(40) * 1000.0 + 500.0
    gx, gy = np.meshgrid(xs, ys)
    score = -np.hypot(gx - 10_000.0, gy - 10_000.0)
    score[0, :5] = np.nan  # nodata
    return gx.ravel(), gy.ravel(), score.ravel()


def test_raster_roc_success_rate_and_pa():
    cx, cy, sc = raster_case()
    dx = np.array([10_200.0, 11_700.0, 8_300.0, 45_000.0])
    dy = np.array([10_400.0, 9_100.0, 12_000.0, 35_000.0])
    idx = ev.deposit_cells(cx, cy, sc, dx, dy, 1000.0)
    assert idx[0] == 10 * 50 + 10
    roc = ev.raster_roc(sc, idx)
    assert roc.n_positive == 4 and roc.n_negative == np.isfinite(sc).sum() - 4 and roc.auc > 0.7
    valid = sc[np.isfinite(sc)]
    sr = ev.success_rate_curve(valid, sc[idx])
    assert sr.deposit_share[-1] == 1.0 and sr.area_share[-1] == pytest.approx(1.0)
    assert np.all(np.diff(sr.area_share) >= 0) and sr.auc > 0.7
    pa = ev.prediction_area(valid, sc[idx])
    assert pa.prediction_rate_at + pa.area_at == pytest.approx(100.0, abs=1.0)
    assert pa.prediction_rate_at == pytest.approx(75.0, abs=5.0)  # the three near deposits, not the far one
    assert pa.normalized_density == pytest.approx(pa.prediction_rate_at / pa.area_at)
    assert pa.weight == pytest.approx(np.log(pa.normalized_density))
    assert np.all(np.diff(pa.prediction_rate) <= 0) and np.all(np.diff(pa.occupied_area) <= 0)


def test_random_map_is_no_better_than_chance():
    rng = np.random.default_rng(7)
    sc = rng.random(20_000)
    dep = rng.random(400)
    assert ev.success_rate_curve(sc, dep).auc == pytest.approx(0.5, abs=0.03)
    pa = ev.prediction_area(sc, dep)
    assert pa.prediction_rate_at == pytest.approx(50.0, abs=3.0)
    assert pa.normalized_density == pytest.approx(1.0, abs=0.12)


def test_deposits_outside_the_map_or_on_nodata():
    cx, cy, sc = raster_case()
    with pytest.raises(JanjaInputError, match="outside the score map"):
        ev.deposit_cells(cx, cy, sc, [10_000.0, 90_000.0], [10_000.0, 10_000.0], 1000.0)
    with pytest.raises(JanjaInputError, match="nodata"):
        ev.deposit_cells(cx, cy, sc, [2_500.0], [300.0], 1000.0)  # the nodata strip
    idx = ev.deposit_cells(cx, cy, sc, [10_000.0, 90_000.0], [10_000.0, 10_000.0], 1000.0, allow_outside=True)
    assert idx[1] == -1 and idx[0] >= 0
    with pytest.raises(JanjaInputError, match="no valid cells"):
        ev.deposit_cells(cx, cy, np.full(sc.size, np.nan), [10_000.0], [10_000.0], 1000.0)


def test_report_section():
    cx, cy, sc = raster_case()
    idx = ev.deposit_cells(cx, cy, sc, [10_200.0, 30_000.0], [10_400.0, 20_000.0], 1000.0)
    valid = sc[np.isfinite(sc)]
    rep = HtmlReport("t")
    ev.report_section(rep, roc=ev.raster_roc(sc, idx), success=ev.success_rate_curve(valid, sc[idx]),
                      pa=ev.prediction_area(valid, sc[idx]))
    html = rep.html()
    assert html.count("<svg") == 3 and "P–A intersection" in html


def test_wa_duplicates_merged_as_krige_does():
    """1392 rows at 820 locations: merged, the eligible negatives are locations, not rows (777 of them)."""
    rows, xy, dep = read_wa()
    values = np.log10(ev.half_min_positive([float(r["Au_ppm"]) for r in rows]))
    merged = ev.sample_protocol_auc(xy[:, 0], xy[:, 1], values, dep[:, 0], dep[:, 1])
    assert merged.n_eligible_negatives == 777 and merged.n_merged_locations > 0
    order = np.random.default_rng(5).permutation(len(values))
    shuffled = ev.sample_protocol_auc(xy[order, 0], xy[order, 1], values[order], dep[:, 0], dep[:, 1])
    assert shuffled.auc_mean == merged.auc_mean  # the row order no longer decides a deposit's score
    unmerged = [ev.sample_protocol_auc(xy[o, 0], xy[o, 1], values[o], dep[:, 0], dep[:, 1], merge_duplicates=False)
                for o in (np.arange(len(values)), order[::-1])]
    assert unmerged[0].n_eligible_negatives == 1341


def test_duplicate_location_scores_are_their_mean():
    sx = np.array([0.0, 0.0, 10_000.0, 20_000.0, 30_000.0])
    sy = np.zeros(5)
    scores = np.array([1.0, 5.0, 0.0, 0.5, 0.2])
    res = ev.sample_protocol_auc(sx, sy, scores, [100.0], [0.0], min_distance_km=5.0)
    assert res.deposit_scores.tolist() == [3.0] and res.n_merged_locations == 1


def test_per_area_minimum_distance_on_a_detailed_survey():
    """A 25 m soil grid with 14 mines: no sample is 5 km away; the rule gives 8 x 25 m = 0.2 km."""
    gx, gy = np.meshgrid(np.arange(0, 3000, 25.0), np.arange(0, 2000, 25.0))
    sx, sy = gx.ravel(), gy.ravel()
    rng = np.random.default_rng(3)
    dx, dy = rng.uniform(200, 2800, 14), rng.uniform(200, 1800, 14)
    scores = -np.hypot(sx[:, None] - dx, sy[:, None] - dy).min(axis=1)
    with pytest.raises(JanjaInputError, match="MIN_DISTANCE"):
        ev.sample_protocol_auc(sx, sy, scores, dx, dy, min_distance_km=5.0)
    res = ev.sample_protocol_auc(sx, sy, scores, dx, dy)
    assert res.min_distance_km == pytest.approx(0.2) and res.spacing_km == pytest.approx(0.025)
    assert ev.protocol_min_distance_km(0.001) == 0.1 and ev.protocol_min_distance_km(2.0) == 5.0


def test_nearest_sample_is_the_exact_great_circle_one():
    rng = np.random.default_rng(4)
    lon, lat = rng.uniform(115, 125, 400), rng.uniform(-35, -15, 400)  # wide: degrees are not distances here
    dlon, dlat = rng.uniform(116, 124, 30), rng.uniform(-34, -16, 30)
    res = ev.sample_protocol_auc(lon, lat, rng.random(400), dlon, dlat, min_distance_km=1.0, merge_duplicates=False)
    brute = ev.distances_km(dlon, dlat, lon, lat, True).argmin(axis=1)
    assert (res.deposit_sample_index == brute).all()
    assert ev.sample_spacing_km(lon, lat, True) == pytest.approx(
        np.median(np.sort(ev.distances_km(lon, lat, lon, lat, True), axis=1)[:, 1]), rel=1e-9)


def test_deposits_far_from_every_sample_are_refused_or_warned():
    rng = np.random.default_rng(6)
    sx, sy = rng.uniform(0, 20_000, 200), rng.uniform(0, 20_000, 200)
    extent = ev.survey_extent_km(sx, sy, False)
    assert extent == pytest.approx(np.hypot(np.ptp(sx), np.ptp(sy)) / 1000)
    with pytest.raises(JanjaInputError, match="same area"):
        ev.check_far_deposits(np.array([7800.0, 7900.0]), extent)
    warning = ev.check_far_deposits(np.array([0.5, 7800.0]), extent)
    assert "1 of 2 deposits" in warning
    assert ev.check_far_deposits(np.array([0.5, 1.0]), extent) is None


def test_training_sites_label_in_sample_deposits():
    mask = ev.training_site_mask([0.0, 1000.0, 5000.0], [0.0, 0.0, 0.0], [10.0, 900.0], [0.0, 0.0], 250.0)
    assert mask.tolist() == [True, True, False]
    assert ev.scope_label(np.array([True, True])) == ev.IN_SAMPLE_LABEL
    assert "partly in-sample: 2 of 3" in ev.scope_label(mask)
    assert ev.scope_label(np.zeros(3, bool)) == "deposits not used to train the map"
