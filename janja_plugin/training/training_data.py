"""The card's `training_data` field: what the model saw, so the plugin can tell a survey unlike it.

input_quantiles are percentiles, over every valid cell of the training stack, of each element after the card's
transform and BEFORE standardisation (log10(value + offset) for a log10 element), which is what the
out-of-distribution guard compares a new stack with; the cell size and sample spacing say at what resolution
the model learned; the sites are the deposits its labels came from (in the stack's CRS), so an evaluation on
them can be labelled in-sample.
"""

import numpy as np

from ..core.inference.distribution import QUANTILE_PERCENT
from ..core.inference.distribution import input_quantiles as core_input_quantiles
from ..core.inference.model_card import ElementSpec

PERCENT = list(QUANTILE_PERCENT)


def input_quantiles(data, specs):
    """{"percent": PERCENT, "values": {name: [9 numbers]}} of the transformed, unstandardised values: the plugin's
    own computation (core.inference.distribution), so the guard compares like with like."""
    elements = [ElementSpec(s["name"], s["unit"], s["transform"], 0.0, 1.0, float(s.get("offset", 0.0)))
                for s in specs]
    return core_input_quantiles([np.asarray(band).ravel() for band in data], elements)


def crs_text(crs_wkt):
    """'EPSG:xxxx' when the CRS has a code, else its WKT (None when the stack has no CRS)."""
    if not crs_wkt:
        return None
    try:
        from osgeo import osr

        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        srs.AutoIdentifyEPSG()
        code, auth = srs.GetAuthorityCode(None), srs.GetAuthorityName(None)
        if code and auth == "EPSG":
            return f"EPSG:{code}"
    except Exception:  # an unusual WKT: keep it whole, it still says where the sites are
        pass
    return crs_wkt


def training_data(data, specs, cell_size, sample_spacing, site_x, site_y, crs_wkt):
    """The card field, for the elements in `specs` (data: their bands, same order)."""
    return {
        "input_quantiles": input_quantiles(data, specs),
        "cell_size": float(cell_size),
        "sample_spacing": None if sample_spacing is None else float(sample_spacing),
        "sites": {"crs": crs_text(crs_wkt) or "unknown",
                  "xy": [[float(x), float(y)] for x, y in zip(site_x, site_y)]},
    }


def for_elements(td, names):
    """The same field restricted to the card's elements (a subset of those the run read)."""
    out = dict(td)
    out["input_quantiles"] = {"percent": td["input_quantiles"]["percent"],
                              "values": {n: td["input_quantiles"]["values"][n] for n in names}}
    return out
