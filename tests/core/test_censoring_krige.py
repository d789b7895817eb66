"""Censoring in the kriging job: fields with nothing measured, mostly censored fields, signed
variables, stated detection limits and flag columns, and the back-transform range warning."""

import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import krige_pipeline as kp
from janja_plugin.core.raster_grid import grid_for_extent

GRID = grid_for_extent(0, 0, 10_000, 10_000, cell=1000.0)


def field(n=60, seed=1):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    z = np.exp(np.sin(x / 3000) + np.cos(y / 2500) + 0.1 * rng.standard_normal(n))
    return x, y, z


def krige(column, settings=None, flags=None, seed=1):
    x, y, _ = field(len(column), seed)
    said = []
    res = kp.krige_elements(x, y, {"Au": column}, settings or kp.KrigeSettings(), GRID, log=said.append,
                            flags=None if flags is None else {"Au": flags})
    return res[0], said


def test_a_field_with_no_measured_value_is_refused():
    with pytest.raises(JanjaInputError, match=r"'Au' has no measured value: 60 sample\(s\) are below detection "
                                              r"\(limits 0.5, 1\).*Leave this element out"):
        krige(["<0.5", "<1"] * 30)


def test_mostly_censored_field_is_kriged_with_a_warning_naming_it():
    _, _, z = field()
    column = ["<0.1"] * 50 + [f"{v:.4f}" for v in z[:10]]
    res, said = krige(column)
    warning = "Element 'Au' is 83.3 % censored (50 of 60 samples below detection)"
    assert any(warning in s for s in said) and any(warning in n for n in res.notes)


def test_80_percent_censored_is_not_yet_warned():
    _, _, z = field()
    limit = np.sort(z)[48]  # the 48 lowest values (80 %) are reported as '<limit'
    res, said = krige([f"<{limit:.6f}" if v < limit else f"{v:.6f}" for v in z])
    assert res.counts["below_dl"] == 48 and not any("censored (" in s for s in said)


def test_signed_values_are_values_without_a_log_transform():
    x, y, z = field()
    clr = np.log(z) - np.log(z).mean()  # centred: about half negative
    parsed, _, _, _, mz = kp.prepare_element("clr_Cu", x, y, list(clr), kp.KrigeSettings(transform="none"))
    assert parsed.counts["measured"] == 60
    np.testing.assert_allclose(np.sort(mz), np.sort(clr))


def test_negative_codes_when_the_user_says_so():
    x, y, z = field()
    column = [-0.5] * 10 + list(z[10:])
    parsed, *_ = kp.prepare_element("Cu", x, y, column, kp.KrigeSettings(transform="none", negative_codes=True))
    assert parsed.counts["below_dl"] == 10 and parsed.values[0] == pytest.approx(0.25)


def test_negative_codes_with_the_log_transform_by_default():
    x, y, z = field()
    parsed, *_ = kp.prepare_element("Cu", x, y, [-0.5] * 10 + list(z[10:]), kp.KrigeSettings())
    assert parsed.counts["below_dl"] == 10


def test_stated_limit_replaces_a_tiny_smallest_value():
    x, y, z = field()
    column = [0.0] * 20 + [0.011] + list(z[21:])
    settings = kp.KrigeSettings(detection_limits={"Au": 0.5})
    parsed, *_ = kp.prepare_element("Au", x, y, column, settings)
    np.testing.assert_allclose(parsed.values[:20], 0.25)


def test_flag_column_reaches_the_parser():
    _, _, z = field()
    column = [0.0] * 5 + list(z[5:])
    res, _ = krige(column, flags=["<"] * 5 + [None] * 55)
    assert res.counts["below_dl"] == 5 and res.counts["zero"] == 0


def test_back_transform_beyond_the_sample_range_is_warned_with_cell_counts():
    prediction = np.array([1.0, 2.0, 3.0, 50.0, 60.0, np.nan])
    sentence = kp.range_warning("Zr", prediction, np.array([1.0, 10.0]))
    assert sentence.startswith("Element 'Zr': 2 of 5 cells (40.0 %) are above the largest sample value (10)")
    assert kp.range_warning("Zr", np.linspace(1, 10, 200), np.array([1.0, 10.0])) is None
    # one cell in 200 (0.5 %) is tolerated
    assert kp.range_warning("Zr", np.append(np.linspace(1, 10, 199), 11.0), np.array([1.0, 10.0])) is None


def test_zeros_substituted_by_a_tiny_value_trigger_the_range_warning():
    # a smooth field 5-50 with 25 % zeros and one measured 0.011: log nugget explodes, the map exceeds the max
    x, y, z = field(120, seed=4)
    column = list(5 + 45 * (z - z.min()) / (z.max() - z.min()))
    column[:30] = [0.0] * 30
    column[30] = 0.011
    res, said = krige(column, seed=4)
    fixed, said_fixed = krige(column, kp.KrigeSettings(detection_limits={"Au": 5.0}), seed=4)
    assert any("after the lognormal back-transform" in s for s in said)
    assert not any("after the lognormal back-transform" in s for s in said_fixed)


@pytest.mark.parametrize("text, message", [
    ("Zr=abc", "stated detection limit of 'Zr' must be a positive number"),
    ("Zr=0", "stated detection limit of 'Zr' must be a positive number"),
    ("Cu=1", "'Cu' in the detection limits is not one of the element fields"),
    ("Zr 1", "field=value pairs"),
])
def test_bad_stated_limits_are_refused_with_a_sentence(text, message):
    with pytest.raises(JanjaInputError, match=message):
        kp.detection_limits_from(text, ["Zr"])


def test_flag_fields_from_a_pattern_or_pairs():
    available = ["Zr_ppm_511", "Zr_511P_T", "Th_ppm_511", "Th_511P_T"]
    elements = ["Zr_ppm_511", "Th_ppm_511"]
    assert kp.flag_fields_for("{element}_511P_T", elements, available) == {
        "Zr_ppm_511": "Zr_511P_T", "Th_ppm_511": "Th_511P_T"}
    assert kp.flag_fields_for("Zr_ppm_511=Zr_511P_T", elements, available) == {"Zr_ppm_511": "Zr_511P_T"}
    assert kp.flag_fields_for("", elements, available) == {}
    assert kp.detection_limits_from("Zr_ppm_511=1; Th_ppm_511=0.5", elements) == {
        "Zr_ppm_511": 1.0, "Th_ppm_511": 0.5}


@pytest.mark.parametrize("text, message", [
    ("{element}_flag", r"no flag field for Zr_ppm_511 -> Zr_flag"),
    ("{bogus}_T", "can only use {field} or {element}"),
    ("Zr_ppm_511=Zr_ppm_511", "is the element field itself"),
])
def test_bad_flag_fields_are_refused_with_a_sentence(text, message):
    with pytest.raises(JanjaInputError, match=message):
        kp.flag_fields_for(text, ["Zr_ppm_511"], ["Zr_ppm_511", "Zr_511P_T"])
