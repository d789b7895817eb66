"""merge_duplicates is vectorised (it looped np.nanmean over every location: 3.5 s of a 4.6 s janja:krige at
10^5 samples); its results must stay those of the loop, kept here verbatim as the reference."""

import csv
import warnings

import numpy as np
import pytest
from testdata import SAMPLE_DATA

from janja_plugin.core.geostatistics import samples
from janja_plugin.core.geostatistics.samples import merge_duplicates, parse_censored

GSWA = SAMPLE_DATA / "wa_stream_sediments.csv"


def loop_reference(x, y, values, tolerance=0.0):
    """The per-location loop merge_duplicates had before it was vectorised (validation left out)."""
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    values = np.asarray(values, float).reshape(x.size, -1)
    n = x.size
    if tolerance > 0:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        pairs = cKDTree(np.column_stack([x, y])).query_pairs(tolerance, output_type="ndarray")
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
    else:
        _, label = np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)
    label = np.asarray(label).ravel()
    order = np.argsort(label, kind="stable")
    _, starts, sizes = np.unique(label[order], return_index=True, return_counts=True)
    groups = [order[s:s + c] for s, c in zip(starts, sizes)]
    if tolerance > 0:
        mx = np.array([x[g].mean() for g in groups])
        my = np.array([y[g].mean() for g in groups])
    else:
        first = np.array([g[0] for g in groups], dtype=int)
        mx, my = x[first], y[first]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mv = np.array([np.nanmean(values[g], axis=0) for g in groups]).reshape(len(groups), -1)
    return mx, my, mv, sizes, groups, int(np.sum(sizes > 1))


def assert_same_as_loop(x, y, values, tolerance=0.0):
    """Bit for bit: coordinates, means (NaN where a group has no value), sizes, rows of each group."""
    mx, my, mv, sizes, groups, n_merged = loop_reference(x, y, values, tolerance)
    m = merge_duplicates(x, y, values, tolerance)
    np.testing.assert_array_equal(m.x, mx, strict=True)
    np.testing.assert_array_equal(m.y, my, strict=True)
    np.testing.assert_array_equal(m.values, mv, strict=True)
    np.testing.assert_array_equal(m.group_sizes, sizes)
    assert m.n_merged_groups == n_merged
    assert len(m.groups) == len(groups) and all(np.array_equal(a, b) for a, b in zip(m.groups, groups))
    return m


def survey(seed, n_sites=400, n_elements=3, max_repeats=12):
    """Sites sampled 1 to 12 times (plus one site 300 times: numpy sums long groups pairwise), censored
    '<DL' values substituted as the importer does, elements missing in some rows and one site with no
    value at all for one element."""
    rng = np.random.default_rng(seed)
    sx = rng.uniform(0, 5000, n_sites).round(0)
    sy = rng.uniform(0, 5000, n_sites).round(0)
    repeats = np.where(rng.random(n_sites) < 0.5, 1, rng.integers(2, max_repeats + 1, n_sites))
    repeats[0] = 300
    site = np.repeat(np.arange(n_sites), repeats)
    rng.shuffle(site)
    cols = []
    for _ in range(n_elements):
        v = 10 ** rng.normal(0, 1.5, site.size)
        raw = [f"<{dl:.2g}" if r < 0.2 else ("" if r < 0.3 else f"{c:.6g}")
               for c, r, dl in zip(v, rng.random(site.size), 10 ** rng.normal(-1, 0.5, site.size))]
        cols.append(parse_censored(raw).values)
    values = np.column_stack(cols)
    values[site == 1, 0] = np.nan  # a site where element 0 was never measured
    return sx[site], sy[site], values


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_elements", [1, 3])
def test_identical_to_the_loop_on_duplicates_nan_and_censored_values(seed, n_elements):
    x, y, values = survey(seed, n_elements=n_elements)
    m = assert_same_as_loop(x, y, values)
    assert m.group_sizes.max() == 300 and 1 in m.group_sizes and m.n_merged_groups > 100
    assert np.isnan(m.values[:, 0]).any()  # the all-NaN site stays NaN


@pytest.mark.parametrize("tolerance", [0.5, 30.0])
def test_identical_to_the_loop_within_a_tolerance(tolerance):
    x, y, values = survey(3)
    jitter = np.random.default_rng(4).uniform(-0.2, 0.2, (2, x.size))
    assert_same_as_loop(x + jitter[0], y + jitter[1], values, tolerance)


def test_identical_to_the_loop_on_single_points_and_signed_zero():
    assert_same_as_loop([5.0], [7.0], [[np.nan]])
    assert_same_as_loop([3.0, 1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0])  # no duplicates at all
    m = assert_same_as_loop([0.0, -0.0, 1.0], [1.0, 1.0, 1.0], [[1.0], [2.0], [4.0]])  # -0.0 == 0.0: one site
    assert m.group_sizes.tolist() == [2, 1]


def test_identical_to_the_loop_on_the_real_survey():
    with open(GSWA) as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["X"]) for r in rows])
    y = np.array([float(r["Y"]) for r in rows])
    values = np.column_stack([parse_censored([r[c] for r in rows]).values for c in ("Au_ppm", "Ag_ppm", "Cu_ppm")])
    assert_same_as_loop(x, y, values)
    assert_same_as_loop(x, y, values[:, :1])


def test_no_nanmean_per_location(monkeypatch):
    """The cost was one np.nanmean call per location; only sites sampled 8+ times may still take one."""
    x, y, values = survey(5, n_sites=2000, max_repeats=4)
    calls = []
    real = np.nanmean
    monkeypatch.setattr(samples.np, "nanmean", lambda *a, **k: calls.append(1) or real(*a, **k))
    m = merge_duplicates(x, y, values)
    monkeypatch.undo()
    assert m.x.size == 2000 and m.n_merged_groups > 500 and len(calls) == 1  # the site sampled 300 times
