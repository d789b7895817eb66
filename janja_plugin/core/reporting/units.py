"""Numbers a geologist reads without a calculator: element units, distances, coordinates, concentrations.

Element units come from the survey's own column names (Au_ppb, Cu_ppm, Fe2O3_pct), so a map legend and a
report say the unit the geologist measured in, not a bare 3.08e-05.
"""

import math
import re

_UNITS = {"ppb": "ppb", "ppm": "ppm", "ppt": "ppt", "pct": "%", "percent": "%", "wt_pct": "wt%", "wtpct": "wt%",
          "wt%": "wt%", "%": "%", "g_t": "g/t", "gt": "g/t", "g/t": "g/t", "mg_kg": "mg/kg", "ug_kg": "µg/kg",
          "ng_g": "ng/g"}
_UNIT_RE = re.compile(r"^(?P<element>.+?)[_\s\-.(\[]+(?P<unit>" + "|".join(
    sorted((re.escape(u) for u in _UNITS), key=len, reverse=True)) + r")[)\]]?$", re.IGNORECASE)


def element_and_unit(name):
    """('Au', 'ppb') from 'Au_ppb'; (name, None) when the name carries no known unit."""
    m = _UNIT_RE.match(str(name).strip())
    if not m:
        return str(name), None
    return m.group("element"), _UNITS[m.group("unit").lower()]


def element_label(name):
    """'Au (ppb)' from 'Au_ppb'; the name itself when no unit is known."""
    element, unit = element_and_unit(name)
    return f"{element} ({unit})" if unit else element


def number(v, digits=3):
    """A plain decimal with `digits` significant figures: 0.0308, 1250, 0.5 (never 3.08e-02).

    Scientific notation only outside 1e-6..1e9, where a decimal would be unreadable anyway.
    """
    if v is None:
        return "n/a"
    v = float(v)
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    if not 1e-6 <= abs(v) < 1e9:
        return f"{v:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    text = f"{v:,.{decimals}f}" if abs(v) >= 10000 else f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def concentration(v, unit=None, digits=3):
    """'0.0308 ppm', or the bare number when the unit is unknown."""
    text = number(v, digits)
    return f"{text} {unit}" if unit and text != "n/a" else text


def distance(metres):
    """'850 m' below 10 km, '12.5 km' above: what a geologist would say in the field."""
    if metres is None or not math.isfinite(float(metres)):
        return "n/a"
    metres = float(metres)
    if abs(metres) < 10000:
        return f"{number(metres, 3)} m"
    return f"{number(metres / 1000.0, 3)} km"


def area_km2(km2):
    return f"{number(km2, 3)} km²"


def coordinate(x, y):
    """'595,123 E / 6,311,456 N': whole metres (or 5 decimals for degrees, detected by magnitude)."""
    if abs(x) <= 360 and abs(y) <= 90:
        return f"{x:.5f} / {y:.5f}"
    return f"{x:,.0f} E / {y:,.0f} N"
