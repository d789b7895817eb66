"""NaN-aware Gaussian window means of a grid: shared by the label-free spatial score and the shared-trunk models.

A plain Gaussian filter would read nodata as zeros and drag every value near a gap or the survey edge down;
the normalised convolution used here averages only the cells that hold a value, so a constant map stays
constant and a linear map of several smoothed bands equals the smoothed linear map (what lets a model smooth
its head's output instead of its features).
"""

import numpy as np

TRUNCATE = 4.0  # the Gaussian is cut at this many sigmas (scipy's default): the halo a cell's value depends on


def smooth(band, sigma_cells):
    """NaN-aware Gaussian window mean (normalised convolution): nodata is left out, not filled with zeros."""
    from scipy.ndimage import gaussian_filter

    ok = np.isfinite(band)
    num = gaussian_filter(np.where(ok, band, 0.0), sigma_cells, mode="reflect", truncate=TRUNCATE)
    den = gaussian_filter(ok.astype(float), sigma_cells, mode="reflect", truncate=TRUNCATE)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~ok] = np.nan
    return out


def halo_cells(sigma_cells):
    """Cells on each side whose values reach a smoothed cell (scipy's kernel radius at TRUNCATE sigmas)."""
    return int(TRUNCATE * float(sigma_cells) + 0.5) if sigma_cells > 0 else 0
