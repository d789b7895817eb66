"""Hostile sample files for the import: '<x'/'>x' strings, flag columns with 0.0 values, zeros,
signed variables, stated detection limits, duplicates with different values, GTK's real till table."""

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import samples as s

GTK = Path(__file__).resolve().parents[1] / "data" / "gtk_till_clb" / "IOCG_CLB_Till_Geochem_reg_511p.gpkg"


def gtk_column(value, flag):
    with sqlite3.connect(GTK) as db:
        rows = db.execute(f'select "{value}", "{flag}" from iocg_clb_till_geochem_reg_511p').fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


@pytest.mark.parametrize("text, kind, limit, value", [
    ("<0.1", s.BELOW_DL, 0.1, 0.05),
    ("< 0,5", s.BELOW_DL, 0.5, 0.25),
    ("<=2", s.BELOW_DL, 2.0, 1.0),
    (">1000", s.ABOVE_DL, 1000.0, 1000.0),
    ("> 5e3", s.ABOVE_DL, 5000.0, 5000.0),
])
def test_lab_strings_are_parsed_with_their_limit(text, kind, limit, value):
    p = s.parse_censored([text, "3.0", "4.0"])
    assert p.kinds[0] == kind
    assert p.detection_limits[0] == pytest.approx(limit)
    assert p.values[0] == pytest.approx(value)


def test_signed_variables_keep_their_negative_values():
    clr = [-1.2, 0.4, -0.3, 1.1, 0.0]
    p = s.parse_censored(clr, negative_codes=False)
    np.testing.assert_array_equal(p.values, clr)
    assert p.counts[s.MEASURED] == 5 and not p.below_detection.any()


def test_signed_mode_still_reads_lab_strings_and_missing_codes():
    p = s.parse_censored(["-0.3", "<0.5", "-9999", "0.7", "-1.5"], negative_codes=False)
    assert list(p.kinds) == [s.MEASURED, s.BELOW_DL, s.MISSING, s.MEASURED, s.MEASURED]
    assert p.values[1] == pytest.approx(0.25) and math.isnan(p.values[2])


def test_negative_codes_stay_the_default_for_concentrations():
    p = s.parse_censored([-0.5, 2.0, 3.0])
    assert p.kinds[0] == s.BELOW_DL and p.values[0] == pytest.approx(0.25)


def test_stated_limit_replaces_the_smallest_value_guess_for_zeros():
    # the smallest measured value (0.011) is far below the method's limit (1): a zero becomes 0.5, not 0.0055
    p = s.parse_censored([0.0, 0.011, 5.0, 20.0], detection_limit=1.0)
    assert p.values[0] == pytest.approx(0.5) and p.detection_limits[0] == 1.0
    assert s.parse_censored([0.0, 0.011, 5.0, 20.0]).values[0] == pytest.approx(0.0055)


def test_stated_limit_applies_to_flag_only_rows():
    p = s.parse_censored([0.0, 7.0, 9.0], flags=["<", None, ""], detection_limit=2.0)
    assert p.kinds[0] == s.BELOW_DL and p.values[0] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_impossible_stated_limit_is_refused_with_a_sentence(bad):
    with pytest.raises(JanjaInputError, match="stated detection limit of 'Zr' must be a positive number"):
        s.parse_censored([1.0, 2.0], column="Zr", detection_limit=bad)


def test_flag_with_a_positive_value_uses_it_as_the_limit():
    p = s.parse_censored([5.0, 7.0, 9.0], flags=["<", None, None])
    assert p.detection_limits[0] == 5.0 and p.values[0] == pytest.approx(2.5)


def test_flag_beside_a_negative_code_keeps_the_code_as_the_limit():
    p = s.parse_censored([-5.0, 7.0, 9.0], flags=["<", None, None])
    assert p.kinds[0] == s.BELOW_DL and p.detection_limits[0] == pytest.approx(5.0)


def test_flag_above_detection_uses_the_value_as_the_limit():
    p = s.parse_censored([100.0, 7.0, 9.0], flags=[">", None, None])
    assert p.kinds[0] == s.ABOVE_DL and p.values[0] == 100.0 and not p.below_detection[0]


def test_flag_column_of_another_length_is_refused():
    with pytest.raises(JanjaInputError, match="flag column of 'Zr' has 2 rows"):
        s.parse_censored([1.0, 2.0, 3.0], flags=["<", None], column="Zr")


def test_signed_unknown_limit_comes_from_the_smallest_positive_value():
    p = s.parse_censored([-3.0, 0.5, 2.0, "BDL"], negative_codes=False)
    assert p.detection_limits[3] == pytest.approx(0.5) and p.values[3] == pytest.approx(0.25)


def test_below_detection_mask_and_sentence_count_every_kind():
    p = s.parse_censored(["<0.1", 0.0, -0.2, "2", ">50", None, "BDL", "3"], column="Au")
    assert list(p.below_detection) == [True, True, True, False, False, False, True, False]
    assert p.censoring_sentence("Au") == (
        "Au: 4 of 7 samples (57.1 %) are below detection, 1 above the upper limit (taken at the limit).")


def test_gtk_flags_with_zero_values_are_all_below_detection():
    values, flags = gtk_column("Zr_ppm_511", "Zr_511P_T")
    p = s.parse_censored(values, flags=flags, column="Zr")
    flagged = np.array([f == "<" for f in flags])
    zero = np.array(values) == 0.0  # 16 more zeros carry GTK's undocumented '!' flag: below detection too
    assert flagged.sum() == 166 and (zero & ~flagged).sum() == 16
    assert p.below_detection[flagged | zero].all() and not p.below_detection[~(flagged | zero)].any()
    assert p.counts[s.BELOW_DL] == 166 and p.counts[s.ZERO] == 16 and p.other_flags.get("!") == 53
    # without a stated limit, the zeros become half the smallest measured value, 0.011 ppm
    assert p.values[flagged].max() == pytest.approx(0.0055)
    # with the stated limit, each flagged 0.0 becomes half of it
    q = s.parse_censored(values, flags=flags, column="Zr", detection_limit=1.0)
    np.testing.assert_allclose(q.values[flagged], 0.5)


def test_duplicate_locations_with_different_values_are_averaged():
    p = s.parse_censored(["<1", "3", "10", "12"])
    m = s.merge_duplicates([0, 0, 5, 5], [0, 0, 5, 5], p.values)
    np.testing.assert_allclose(sorted(m.values[:, 0]), [1.75, 11.0])
    assert m.n_merged_groups == 2
