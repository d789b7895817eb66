"""Numbers in reports and legends: units from the survey's column names, decimals not 3.08e-05."""

import pytest

from janja_plugin.core.reporting import units


@pytest.mark.parametrize("name, expected", [
    ("Au_ppb", ("Au", "ppb")), ("Cu_ppm", ("Cu", "ppm")), ("Fe2O3_pct", ("Fe2O3", "%")), ("Au (g/t)", ("Au", "g/t")),
    ("zinc", ("zinc", None)), ("ppm", ("ppm", None)), ("Au_ppm_rep", ("Au_ppm_rep", None)),
])
def test_element_and_unit_from_column_names(name, expected):
    assert units.element_and_unit(name) == expected


@pytest.mark.parametrize("value, text", [
    (3.08e-05, "0.0000308"), (0.0316, "0.0316"), (0.5, "0.5"), (1250.4, "1250"), (84360.0, "84,360"),
    (0, "0"), (float("nan"), "n/a"), (2.5e-9, "2.5e-09"),
])
def test_numbers_are_plain_decimals(value, text):
    assert units.number(value) == text


def test_distances_coordinates_and_labels():
    assert units.distance(850) == "850 m" and units.distance(84360) == "84.4 km"
    assert units.coordinate(595123.4, 6311456.6) == "595,123 E / 6,311,457 N"
    assert units.element_label("Au_ppb") == "Au (ppb)" and units.concentration(0.0308, "ppm") == "0.0308 ppm"
