import csv

import numpy as np
import pytest
from testdata import REPO, SAMPLE_DATA

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics.samples import (
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
    assert p.counts == {"measured": 3, "below_dl": 3, "above_dl": 1, "zero": 1, "missing": 4,
                        "unparseable": 1}
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
    [(118.0, -34.0, 32750), (5.7, 50.9, 32631), (-180.0, 10.0, 32601), (179.999, -1.0, 32760),
     (180.0, 1, 32601)],
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


GTK = REPO / "tests" / "data" / "gtk_till_clb" / "IOCG_CLB_Till_Geochem_reg_511p.gpkg"


def test_text_codes_float32_missing_and_numpy_cells():
    raw = ["BDL", "<0", ">0", np.float32(-9999.9), np.float64(4.0), np.int32(2), "<= 0.2", "ND", "1e-3", True]
    p = parse_censored(raw, max_unparseable_fraction=0.5)
    assert list(p.kinds) == ["below_dl", "below_dl", "unparseable", "missing", "measured", "measured",
                             "below_dl", "unparseable", "measured", "unparseable"]
    # 'BDL' and '<0' are below an unknown limit: the smallest measured value (0.001), halved
    np.testing.assert_allclose(p.values[[0, 1, 6]], [0.0005, 0.0005, 0.1])
    assert p.unparseable_examples == [(2, ">0"), (7, "ND"), (9, "True")]


def test_flag_column_convention():
    values = [0.0, 12.0, 5.0, 3.0, 0.0, 20.0, -9999]
    flags = ["<", None, "<", "!", "!", ">", "<"]
    p = parse_censored(values, flags=flags)
    assert list(p.kinds) == ["below_dl", "measured", "below_dl", "measured", "zero", "above_dl", "below_dl"]
    np.testing.assert_allclose(p.detection_limits, [3.0, np.nan, 5.0, np.nan, 3.0, 20.0, 3.0], equal_nan=True)
    np.testing.assert_allclose(p.values, [1.5, 12.0, 2.5, 3.0, 1.5, 20.0, 1.5])
    assert p.other_flags == {"!": 2}
    with pytest.raises(JanjaInputError, match="flag column of 'Zr' has 2 rows but the value column has 7"):
        parse_censored(values, flags=["<", ""], column="Zr")


def test_real_gtk_till_flags():
    import sqlite3

    con = sqlite3.connect(f"file:{GTK}?mode=ro", uri=True)
    query = 'SELECT "Zr_ppm_511", "Zr_511P_T" FROM iocg_clb_till_geochem_reg_511p ORDER BY fid'
    rows = con.execute(query).fetchall()
    con.close()
    zr = [v for v, _ in rows]
    flagged = parse_censored(zr, flags=[f for _, f in rows], column="Zr_ppm_511")
    # PROVENANCE.md: 166 '<' rows (value 0.0); 53 '!' rows, 16 of them 0.0
    assert len(rows) == 1112 and flagged.other_flags == {"!": 53}
    assert (flagged.counts["below_dl"], flagged.counts["zero"], flagged.counts["measured"]) == (166, 16, 930)
    unflagged = parse_censored(zr, column="Zr_ppm_511")  # without the flags the 0.0s are plain zeros
    assert unflagged.counts["zero"] == 182
    np.testing.assert_allclose(flagged.values, unflagged.values)


def test_real_values_after_substitution():
    au = parse_censored(gswa_column("Au_ppm"))
    raw = np.array([float(v) for v in gswa_column("Au_ppm")])
    assert raw[raw > 0].min() == 1e-5
    np.testing.assert_allclose(au.values[raw == 0], 0.5e-5)  # half the smallest positive Au
    np.testing.assert_allclose(au.values[raw == -2e-5], 1e-5)  # half the 0.00002 limit
    np.testing.assert_allclose(au.values[raw > 0], raw[raw > 0])
    assert au.warnings == []


def test_real_silver_mixes_detection_limits_and_says_so():
    ag = parse_censored(gswa_column("Ag_ppm"), column="Ag_ppm")
    assert (ag.counts["below_dl"], ag.counts["zero"], ag.counts["measured"]) == (41, 72, 1104)
    assert np.nanmax(ag.values[ag.kinds == "measured"]) == pytest.approx(0.059)
    # 31 rows coded -0.1 (limit 0.1 ppm) sit above every measured Ag once halved to 0.05
    assert len(ag.warnings) == 1 and "31 below-detection value(s)" in ag.warnings[0]
    lowest = parse_censored(gswa_column("Ag_ppm"), substitution="half_min_positive")
    censored = lowest.values[lowest.kinds == "below_dl"]
    assert np.nanmax(censored) < np.nanmin(lowest.values[lowest.kinds == "measured"])


def test_unknown_limit_without_measured_values():
    p = parse_censored([0, "<0.2", -0.5])
    np.testing.assert_allclose(p.values, [0.1, 0.1, 0.25])  # the zero takes the smallest known limit
    q = parse_censored([0, 0, "BDL"], column="Au_ppb")
    assert np.all(np.isnan(q.values)) and "unknown detection limit" in q.warnings[0]


def test_bad_parameters_are_refused():
    with pytest.raises(JanjaInputError, match="Unknown substitution 'half'"):
        parse_censored([1.0], substitution="half")
    with pytest.raises(JanjaInputError, match="factor must be a number >= 0"):
        parse_censored([1.0], substitution="dl_factor", factor=-1)
    with pytest.raises(JanjaInputError, match="no numeric values"):
        parse_censored([None, "", -9999], column="Au_ppb")


def test_merge_refuses_bad_coordinates_and_tolerance():
    with pytest.raises(JanjaInputError, match=r"no valid coordinates \(rows 1\)"):
        merge_duplicates([0.0, np.nan], [0.0, 1.0], [1.0, 2.0])
    with pytest.raises(JanjaInputError, match="tolerance must be a distance >= 0"):
        merge_duplicates([0.0], [0.0], [1.0], tolerance=-1)
    with pytest.raises(JanjaInputError, match="x has 2 values but y has 1"):
        merge_duplicates([0.0, 1.0], [0.0], [1.0, 2.0])


def test_real_merge_averages_each_element_and_keeps_every_row_once():
    with open(GSWA) as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["X"]) for r in rows])
    y = np.array([float(r["Y"]) for r in rows])
    ag = parse_censored([r["Ag_ppm"] for r in rows]).values
    cu = np.array([float(r["Cu_ppm"]) for r in rows])
    m = merge_duplicates(x, y, np.column_stack([cu, ag]))
    assert m.n_merged_groups == 523 and np.bincount(m.group_sizes).tolist() == [0, 297, 479, 39, 5]
    assert sorted(np.concatenate(m.groups).tolist()) == list(range(1392))
    for i, g in enumerate(m.groups):
        assert np.all(x[g] == m.x[i]) and np.all(y[g] == m.y[i])
        if np.isfinite(ag[g]).any():
            assert m.values[i, 1] == pytest.approx(np.nanmean(ag[g]))
        else:
            assert np.isnan(m.values[i, 1])


def test_utm_refuses_projected_coordinates():
    assert utm_epsg_for_lonlat(357.0, 10.0) == utm_epsg_for_lonlat(-3.0, 10.0) == 32630
    assert utm_epsg_for_lonlat(0.0, 0.0) == 32631
    with pytest.raises(JanjaInputError, match="look projected"):
        utm_epsg_for_lonlat(500000.0, 6200000.0)


def test_summary_counts_measured_values():
    p = parse_censored([1.0, "<1", 100.0, None])
    s = summary_statistics(p.values, p.kinds)
    assert (s["n"], s["n_measured"]) == (3, 2) and s["min"] == 0.5 and s["max"] == 100.0
    assert s["sd_log10"] > 0 and summary_statistics([np.nan], ["missing"]) == {"n": 0, "n_measured": 0}
