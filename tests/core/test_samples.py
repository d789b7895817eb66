import csv

import numpy as np
import pytest
from testdata import SAMPLE_DATA

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.samples import (
    merge_duplicates,
    parse_censored,
    summary_statistics,
    utm_epsg_for_lonlat,
)

GSWA = SAMPLE_DATA / "wa_stream_sediments.csv"  # raw values of the WA survey, see PROVENANCE.md


class QgsNullLike:
    """What a QGIS NULL QVariant looks like to plain Python code."""

    def __str__(self):
        return "NULL"


def test_every_convention_in_one_column():
    raw = ["12.5", 3, "<0.5", "< 2", ">1000", -0.001, -9999, "", None, QgsNullLike(), 0, "0,25", "n.d.x"]
    p = parse_censored(raw, max_unparseable_fraction=0.2)
    expected = [12.5, 3.0, 0.25, 1.0, 1000.0, 0.0005, np.nan, np.nan, np.nan, np.nan, 0.125, 0.25, np.nan]
    np.testing.assert_allclose(p.values, expected, equal_nan=True)
    assert p.counts == {"measured": 3, "below_dl": 3, "above_dl": 1, "zero": 1, "missing": 4, "unparseable": 1}
    assert p.unparseable_examples == [(12, "n.d.x")]
    assert p.detection_limits[10] == 0.25  # a zero's limit = smallest positive measured value


def test_substitution_choices():
    raw = ["<0.4", 2.0, 0]
    assert parse_censored(raw, "dl_factor", 0.1).values[0] == pytest.approx(0.04)
    omitted = parse_censored(raw, "omit").values
    assert np.isnan(omitted[0]) and np.isnan(omitted[2]) and omitted[1] == 2.0


def test_column_without_numbers_is_refused():
    with pytest.raises(JanjaInputError, match="no numeric values.*'JAC 009'"):
        parse_censored(["JAC 009", "JAC 010"], column="COMPSAMPID")


def gswa_column(name):
    with open(GSWA) as fh:
        return [row[name] for row in csv.DictReader(fh)]


def test_counts_on_real_western_australia_columns():
    au = parse_censored(gswa_column("Au_ppm"))  # PROVENANCE.md: 154 zeros, 53 negative codes
    assert (au.counts["zero"], au.counts["below_dl"], au.counts["missing"]) == (154, 53, 0)
    ag = parse_censored(gswa_column("Ag_ppm"))  # 1217 of 1392 rows have Ag
    assert ag.counts["missing"] == 1392 - 1217
    assert np.all(au.values > 0)


def test_real_duplicates_merge_to_820_locations():
    with open(GSWA) as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["X"]) for r in rows])
    y = np.array([float(r["Y"]) for r in rows])
    cu = np.array([float(r["Cu_ppm"]) for r in rows])
    merged = merge_duplicates(x, y, cu[:, None])
    assert merged.x.size == 820 and merged.group_sizes.sum() == 1392
    g = int(np.argmax(merged.group_sizes))
    assert merged.values[g, 0] == pytest.approx(cu[merged.groups[g]].mean())


def test_tolerance_merges_transitively_and_ignores_nan():
    x = np.array([0.0, 0.8, 1.6, 100.0])
    m = merge_duplicates(x, np.zeros(4), np.array([[1.0], [np.nan], [3.0], [5.0]]), tolerance=1.0)
    assert m.x.size == 2 and m.n_merged_groups == 1
    np.testing.assert_allclose(sorted(m.values[:, 0]), [2.0, 5.0])


@pytest.mark.parametrize(
    "lon, lat, epsg",
    [(118.0, -34.0, 32750), (5.7, 50.9, 32631), (-180.0, 10.0, 32601), (179.999, -1.0, 32760), (180.0, 1, 32601)],
)
def test_utm_zone(lon, lat, epsg):
    assert utm_epsg_for_lonlat(lon, lat) == epsg


def test_summary_statistics():
    s = summary_statistics([1.0, 10.0, 100.0, np.nan])
    assert s["n"] == 3 and s["median"] == 10.0 and s["mean_log10"] == pytest.approx(1.0)


def test_id_column_with_a_few_numeric_ids_is_refused():
    raw = ["JAC 009", "JAC 010", "73", "JAC 011", "68"]
    with pytest.raises(JanjaInputError, match="mostly text: 3 of its 5"):
        parse_censored(raw, column="COMPSAMPID")


def test_half_min_positive_ranks_every_censored_value_lowest():
    p = parse_censored(["<0.1", -0.0001, 0, 0.002, 0.5], substitution="half_min_positive")
    np.testing.assert_allclose(p.values, [0.001, 0.001, 0.001, 0.002, 0.5])
