"""The window engine's whole-grid predict as it was before streaming (commit 7c82e9e), frozen as the reference
the streamed engine (windows.stream_predict) must equal cell for cell. Not used by the plugin."""

import time

import numpy as np

from janja_plugin.core.inference import windows as wn


def _interpolate_coarse(coarse, row_nodes, col_nodes, nrows, ncols, block_rows=256):
    """Bilinear interpolation of node values (NaN = none) to every cell; weights renormalised over valid nodes.

    Works in blocks of rows so its temporaries stay small whatever the raster size.
    """
    ok = np.isfinite(coarse)
    v = np.where(ok, coarse, 0.0)
    r0, r1, wr = wn._axis_weights(nrows, row_nodes)
    c0, c1, wc = wn._axis_weights(ncols, col_nodes)
    out = np.empty((nrows, ncols), np.float32)
    for b0 in range(0, nrows, block_rows):
        b = slice(b0, min(b0 + block_rows, nrows))
        num, den = 0.0, 0.0
        for rows, rw in ((r0[b], 1 - wr[b]), (r1[b], wr[b])):
            for cols, cw in ((c0, 1 - wc), (c1, wc)):
                w = rw[:, None] * cw[None, :]
                num = num + w * v[np.ix_(rows, cols)]
                den = den + w * ok[np.ix_(rows, cols)]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1), np.nan)
    return out




def whole_grid_predict(model, stack, bands, stride=1, mask=None, batch_size=wn.DEFAULT_BATCH, tile_rows=None,
                       progress=None, prefetch=True):
    """Prospective-class probability for every cell of `stack`: float32 (rows, cols), NaN where nodata.

    bands: the stack band index of each card element (model_card.match_stack). mask: optional bool
    (rows, cols), False cells are left NaN. progress(fraction) returning True cancels (Cancelled).
    Returns (probability, valid_centre_mask, EngineStats).
    """
    if stride < 1 or int(stride) != stride:
        raise wn.JanjaInputError(f"The stride must be a whole number of cells, 1 or more, not {stride}.")
    stride = int(stride)
    if model.fixed_batch:
        batch_size = model.fixed_batch
    nrows, ncols = stack.nrows, stack.ncols
    mask = wn.checked_mask(mask, stack)
    t_start = time.perf_counter()
    stats = wn.EngineStats()
    prep = wn._Preparer(model.card, stack, bands, batch_size, tile_rows)
    out = np.full((nrows, ncols), np.nan, dtype=np.float32)
    valid = np.zeros((nrows, ncols), dtype=bool)

    def masked(sel_fn):
        if mask is None:
            return sel_fn
        return lambda r0, r1: sel_fn(r0, r1) & mask[r0:r1]

    if stride == 1:
        wn._run_pass(model, prep, masked(lambda r0, r1: np.ones((r1 - r0, ncols), bool)), out, valid, stats,
                  progress, 0.0, 1.0, prefetch)
    else:
        row_nodes, col_nodes = wn.stride_nodes(nrows, stride), wn.stride_nodes(ncols, stride)
        is_row, is_col = np.zeros(nrows, bool), np.zeros(ncols, bool)
        is_row[row_nodes], is_col[col_nodes] = True, True
        wn._run_pass(model, prep, masked(lambda r0, r1: is_row[r0:r1, None] & is_col[None, :]), out, valid, stats,
                  progress, 0.0, 0.9, prefetch)
        dense = _interpolate_coarse(out[np.ix_(row_nodes, col_nodes)], row_nodes, col_nodes, nrows, ncols)
        keep = valid if mask is None else valid & mask
        node = is_row[:, None] & is_col[None, :]
        fill = keep & ~node & np.isfinite(dense)
        stats.n_interpolated = int(fill.sum())
        out[fill] = dense[fill]
        orphan = keep & ~node & ~np.isfinite(dense)  # no predicted neighbour: predict these exactly
        if orphan.any():
            wn._run_pass(model, prep, lambda r0, r1: orphan[r0:r1], out, None, stats, progress, 0.9, 1.0, prefetch)
    stats.n_valid_cells = wn.check_valid_cells(valid, mask, model.card)
    if progress is not None and progress(1.0):
        raise wn.Cancelled("The prospectivity run was cancelled.")
    stats.seconds = time.perf_counter() - t_start
    return out, valid, stats
