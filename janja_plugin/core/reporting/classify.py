"""Class breaks a geochemist expects on a map: percentiles of the valid values."""

import numpy as np

# Background below the median; 75/90/95/98th percentiles separate the increasingly anomalous classes.
GEOCHEM_PERCENTILES = (0, 25, 50, 75, 90, 95, 98, 100)


def percentile_breaks(values, percentiles=GEOCHEM_PERCENTILES):
    """Strictly increasing break values (ties merged) from the finite values; [] when there are none."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [], []
    breaks = np.percentile(v, percentiles)
    kept_values, kept_pcts = [], []
    for b, p in zip(breaks, percentiles):
        if not kept_values or b > kept_values[-1]:
            kept_values.append(float(b))
            kept_pcts.append(p)
    return kept_values, kept_pcts
