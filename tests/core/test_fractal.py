"""C–A / C–N: exact segmented fit, thresholds recovered on fields built from the fractal model.

C–A assumes each population follows a power law, A(>= c) ∝ c^-a (Cheng et al. 1994). The
synthetic two-population field therefore has a broken power-law distribution: the true threshold
T is, by construction, the concentration where the exponent changes from a1 (background) to a2
(the richer population, 20 % of the cells, placed as a patch). A lognormal mixture is not used as
the yardstick: its log–log C–A curve is curved everywhere, so its breaks are not a known number.
"""

import itertools

import numpy as np
import pytest

from janja_plugin.core.anomaly import fractal
from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.reporting.report import HtmlReport


def broken_power_law_field(seed, shape=(200, 200), cmin=10.0, a1=0.5, a2=2.5, patch_share=0.2):
    """Survival S(c) = (c/cmin)^-a1 below T, S(T) (c/T)^-a2 above; S(T) = patch_share; T known."""
    rng = np.random.default_rng(seed)
    t = cmin * patch_share ** (-1.0 / a1)
    u = rng.random(shape[0] * shape[1])
    values = np.where(u > patch_share, cmin * u ** (-1.0 / a1), t * (u / patch_share) ** (-1.0 / a2))
    values = np.sort(values)
    field = np.empty(shape)
    patch = np.zeros(shape, bool)
    rows, cols = shape[0] * 2 // 5, int(round(patch_share * shape[0] * shape[1] / (shape[0] * 2 // 5)))
    patch[40:40 + rows, 50:50 + cols] = True
    n_patch = int(patch.sum())
    field[patch] = rng.permutation(values[-n_patch:])
    field[~patch] = rng.permutation(values[:-n_patch])
    return field, t, patch


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ca_recovers_the_known_threshold(seed):
    field, t_true, patch = broken_power_law_field(seed)
    res = fractal.concentration_area(field, cell_area=0.25)
    assert res.chosen_by == "BIC" and res.n_segments == 2
    assert res.thresholds[0] == pytest.approx(t_true, rel=0.10)
    assert res.segments[0].slope == pytest.approx(-0.5, abs=0.05)
    assert res.segments[1].slope == pytest.approx(-2.5, abs=0.25)
    cls = res.classify(field)
    assert np.mean(cls[patch] == 1) > 0.9 and np.mean(cls[~patch] == 0) > 0.97


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_single_power_law_population_gives_one_segment(seed):
    field = 10.0 * (1.0 - np.random.default_rng(seed).random((200, 200))) ** (-1 / 1.5)
    res = fractal.concentration_area(field, cell_area=1.0)
    assert res.n_segments == 1 and res.thresholds.size == 0
    assert min(res.bic, key=res.bic.get) == 1
    assert res.segments[0].slope == pytest.approx(-1.5, abs=0.1)
    assert (res.classify(field) == 0).all()


def test_segmented_fit_is_exact_against_brute_force():
    rng = np.random.default_rng(5)
    x = np.sort(rng.random(16))
    y = np.where(x < 0.4, 2 * x, np.where(x < 0.7, 0.8 - x, 3 * x)) + rng.normal(0, 0.05, 16)
    for m in (2, 3):
        sse, runs = fractal.segmented_fit(x, y, m, min_points=3)
        best = np.inf
        for cuts in itertools.combinations(range(3, 14), m - 1):
            bounds = (0,) + cuts + (16,)
            if any(b - a < 3 for a, b in zip(bounds[:-1], bounds[1:])):
                continue
            total = sum(np.sum((y[a:b] - np.polyval(np.polyfit(x[a:b], y[a:b], 1), x[a:b])) ** 2)
                        for a, b in zip(bounds[:-1], bounds[1:]))
            best = min(best, total)
        assert sse == pytest.approx(best, rel=1e-8, abs=1e-12)
        assert runs[0][0] == 0 and runs[-1][1] == 15


def test_area_units_user_segments_and_nodata():
    field, t_true, _ = broken_power_law_field(4, shape=(100, 100))
    field[0, :10] = -9999.0
    res = fractal.concentration_area(field, cell_area=2.5, nodata=-9999.0, n_segments=3)
    assert res.chosen_by == "user" and res.n_segments == 3 and res.thresholds.size == 2
    assert res.sizes[0] == pytest.approx(2.5 * (field.size - 10))
    assert res.n_values == field.size - 10


def test_cn_counts_samples():
    v = 10 ** np.random.default_rng(1).normal(1, 0.3, 500)
    res = fractal.concentration_number(v)
    assert res.kind == "C-N" and res.sizes[0] == 500
    assert np.all(np.diff(res.sizes) <= 0)


def test_refusals():
    with pytest.raises(JanjaInputError, match="Substitute censored"):
        fractal.concentration_number([1.0, 0.0, 3.0, 4.0])
    with pytest.raises(JanjaInputError, match="no valid values"):
        fractal.concentration_area(np.full((3, 3), np.nan), 1.0)
    with pytest.raises(JanjaInputError, match="equal"):
        fractal.concentration_number(np.ones(50))
    with pytest.raises(JanjaInputError, match="segments cannot be fitted"):
        fractal.concentration_number(10 ** np.random.default_rng(1).normal(1, 0.3, 500), n_levels=12, n_segments=4)


def test_report_section():
    field, _, _ = broken_power_law_field(0, shape=(60, 60))
    rep = HtmlReport("t")
    fractal.report_section(rep, fractal.concentration_area(field, 1.0), "Cu_ppm")
    html = rep.html()
    assert "C-A log–log plot" in html and "segment 1" in html and "BIC" in html
