"""Training windows from an element stack and known deposits, labelled by distance, split by spatial blocks.

Windows are cut exactly as janja:prospectivity cuts them (card transform, missing values -> the
element mean, reflection at the edges, the same bilinear resize matrices), so a model sees in QGIS what
it saw in training; tests/training checks that equality against the inference engine.
"""

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import JanjaInputError
from ..core.inference.windows import reflect_index, resize_matrix, transform_values


@dataclass
class Stack:
    data: np.ndarray  # (elements, rows, cols) float32, NaN = missing
    names: list
    x0: float  # west edge
    y0: float  # north edge
    cell: float
    crs_wkt: str | None = None

    @property
    def shape(self):
        return self.data.shape[1:]

    def cell_centres(self, rows, cols):
        return self.x0 + (np.asarray(cols) + 0.5) * self.cell, self.y0 - (np.asarray(rows) + 0.5) * self.cell

    def cell_of(self, x, y):
        return (np.floor((self.y0 - np.asarray(y)) / self.cell).astype(int),
                np.floor((np.asarray(x) - self.x0) / self.cell).astype(int))

    def select(self, names):
        missing = [n for n in names if n not in self.names]
        if missing:
            raise JanjaInputError(f"The stack has no band(s) {missing}; its bands are {self.names}.")
        idx = [self.names.index(n) for n in names]
        return Stack(self.data[idx], list(names), self.x0, self.y0, self.cell, self.crs_wkt)


def read_stack(path):
    import rasterio

    with rasterio.open(path) as ds:
        data = ds.read().astype(np.float32)
        if ds.nodata is not None:
            data[data == np.float32(ds.nodata)] = np.nan
        t = ds.transform
        if abs(abs(t.a) - abs(t.e)) > 1e-6 * abs(t.a) or t.b or t.d:
            raise JanjaInputError(f"{path}: cells must be square and north-up for training.")
        names = [d or f"band{i + 1}" for i, d in enumerate(ds.descriptions)]
        return Stack(data, names, float(t.c), float(t.f), float(t.a), ds.crs.to_wkt() if ds.crs else None)


def read_points(path, crs_wkt=None, layer=None):
    """(x, y) of a point layer (GeoPackage/shapefile/CSV with X/Y) in the stack's CRS, via GDAL/OGR."""
    from osgeo import ogr, osr

    ds = ogr.Open(str(path))
    if ds is None:
        raise JanjaInputError(f"Cannot open the deposits file {path}.")
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    if lyr is None:
        raise JanjaInputError(f"{path} has no layer '{layer}'.")
    src = lyr.GetSpatialRef()
    tr = None
    if crs_wkt and src is not None:
        dst = osr.SpatialReference()
        dst.ImportFromWkt(crs_wkt)
        for s in (src, dst):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if not src.IsSame(dst):
            tr = osr.CoordinateTransformation(src, dst)
    xs, ys = [], []
    for feat in lyr:
        g = feat.GetGeometryRef()
        if g is None:
            continue
        if tr is not None:
            g = g.Clone()
            g.Transform(tr)
        xs.append(g.GetX())
        ys.append(g.GetY())
    return np.array(xs), np.array(ys)


def read_point_field(path, field_name, layer=None):
    """Raw values of one attribute of a point layer, in read_points' order (features without a geometry skipped),
    or None when the layer has no such field."""
    from osgeo import ogr

    ds = ogr.Open(str(path))
    if ds is None:
        raise JanjaInputError(f"Cannot open the point file {path}.")
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    if lyr is None:
        raise JanjaInputError(f"{path} has no layer '{layer}'.")
    if lyr.GetLayerDefn().GetFieldIndex(field_name) < 0:
        return None
    return [feat.GetField(field_name) for feat in lyr if feat.GetGeometryRef() is not None]


# --- element statistics and windows ------------------------------------------------------------------

def element_specs(stack, units="ppm", transform="log10"):
    """Card 'elements' entries: log10 then standardise with the stack's own mean and std."""
    specs = []
    for name, band in zip(stack.names, stack.data):
        v = band[np.isfinite(band)]
        if transform == "log10":
            v = v[v > 0]
            if v.size == 0:
                raise JanjaInputError(f"The band {name} has no positive value to take a log of.")
            v = np.log10(v)
        if v.size < 2 or float(np.std(v)) == 0:
            raise JanjaInputError(f"The band {name} is constant or empty: it cannot inform a model.")
        specs.append({"name": name, "unit": units, "transform": transform, "mean": float(np.mean(v)),
                      "std": float(np.std(v))})
    return specs


def transformed_stack(stack, specs):
    """(elements, rows, cols) standardised, missing -> 0 (the element mean), as the engine does."""
    from ..core.inference.model_card import ElementSpec

    elements = [ElementSpec(s["name"], s["unit"], s["transform"], s["mean"], s["std"]) for s in specs]
    t = transform_values(stack.data, elements)
    missing = ~np.isfinite(t)
    t[missing] = 0.0
    centre_ok = ~missing.any(axis=0)
    return t, centre_ok


def cut_windows(t, rows, cols, w):
    """(n, elements, w, w) windows centred on (rows, cols), reflected at the stack's edges."""
    h = w // 2
    nrows, ncols = t.shape[1:]
    off = np.arange(-h, h + 1)
    rr = reflect_index(np.asarray(rows)[:, None] + off[None, :], nrows)  # (n, w)
    cc = reflect_index(np.asarray(cols)[:, None] + off[None, :], ncols)
    win = t[:, rr[:, :, None], cc[:, None, :]]  # (E, n, w, w)
    return np.ascontiguousarray(win.transpose(1, 0, 2, 3)).astype(np.float32)


def resize_windows(win, size, mode="bilinear_half_pixel"):
    """(n, E, w, w) -> (n, E, size, size) with the engine's interpolation matrices."""
    w = win.shape[-1]
    if size == w and mode == "bilinear_half_pixel":
        return win
    m = resize_matrix(w, size, mode)
    return np.ascontiguousarray(np.matmul(np.matmul(m, win), m.T)).astype(np.float32)


# --- labels and splits -------------------------------------------------------------------------------

@dataclass
class Labels:
    rows: np.ndarray
    cols: np.ndarray
    y: np.ndarray  # 1 positive, 0 negative
    nearest_deposit: np.ndarray  # index of the nearest deposit (groups positives)
    distance: np.ndarray
    counts: dict = field(default_factory=dict)


def label_cells(stack, centre_ok, deposit_x, deposit_y, positive_within, negative_beyond, max_negatives=3000,
                percentile_element=None, percentile=None, seed=0):
    """Positive cells within `positive_within` (m) of a deposit; negatives beyond `negative_beyond`.

    As in the study, negatives may also be required to have the target element below a percentile.
    Cells between the two distances are not used. Negatives are subsampled to `max_negatives`.
    """
    if negative_beyond < positive_within:
        raise JanjaInputError("The negative distance must be at least the positive distance.")
    if len(deposit_x) == 0:
        raise JanjaInputError("No deposit points were read: supervised training needs known deposits.")
    rows, cols = np.nonzero(centre_ok)
    x, y = stack.cell_centres(rows, cols)
    from scipy.spatial import cKDTree

    dist, nearest = cKDTree(np.column_stack([deposit_x, deposit_y])).query(np.column_stack([x, y]))
    pos = dist <= positive_within
    neg = dist > negative_beyond
    counts = {"cells_with_data": int(rows.size), "positive": int(pos.sum()), "between_unused": int((~pos & ~neg).sum())}
    if percentile_element is not None and percentile is not None:
        band = stack.data[stack.names.index(percentile_element)][rows, cols]
        cut = np.nanpercentile(band, percentile)
        neg &= band < cut
        counts["negative_after_percentile"] = int(neg.sum())
    counts["negative_available"] = int(neg.sum())
    if pos.sum() == 0:
        raise JanjaInputError(
            f"No cell with data lies within {positive_within:g} m of a deposit: check that the deposits fall "
            "inside the stack and share its CRS, or raise the positive distance."
        )
    neg_idx = np.nonzero(neg)[0]
    if neg_idx.size > max_negatives:
        neg_idx = np.sort(np.random.default_rng(seed).choice(neg_idx, max_negatives, replace=False))
    keep = np.concatenate([np.nonzero(pos)[0], neg_idx])
    counts["negative_used"] = int(neg_idx.size)
    counts["deposits_with_positive_cells"] = int(np.unique(nearest[pos]).size)
    return Labels(rows[keep], cols[keep], pos[keep].astype(np.int64), nearest[keep], dist[keep], counts)


def spatial_block_folds(stack, labels, deposit_x, deposit_y, block_size, k, seed=0):
    """Fold (0..k-1) of every labelled cell by spatial blocks of `block_size` metres.

    A positive cell takes the block of its nearest deposit, so all windows of one deposit fall in one
    fold; blocks holding deposits are dealt to folds to balance positives, the other blocks at random.
    The block grid is shifted by a seeded random offset so repeats differ.
    """
    rng = np.random.default_rng(seed)
    ox, oy = rng.uniform(0, block_size, 2)
    x, y = stack.cell_centres(labels.rows, labels.cols)
    dx, dy = np.asarray(deposit_x)[labels.nearest_deposit], np.asarray(deposit_y)[labels.nearest_deposit]
    px = np.where(labels.y == 1, dx, x)
    py = np.where(labels.y == 1, dy, y)
    bx = np.floor((px - stack.x0 + ox) / block_size).astype(np.int64)
    by = np.floor((stack.y0 - py + oy) / block_size).astype(np.int64)
    block = bx * 100003 + by
    blocks, inverse = np.unique(block, return_inverse=True)
    pos_per_block = np.bincount(inverse, weights=labels.y, minlength=blocks.size)
    fold_of_block = np.full(blocks.size, -1)
    load = np.zeros(k)
    with_pos = np.nonzero(pos_per_block > 0)[0]
    rng.shuffle(with_pos)
    for b in with_pos[np.argsort(-pos_per_block[with_pos], kind="stable")]:
        f = int(np.argmin(load + rng.uniform(0, 1e-6, k)))
        fold_of_block[b] = f
        load[f] += pos_per_block[b]
    rest = np.nonzero(fold_of_block < 0)[0]
    fold_of_block[rest] = rng.permutation(np.arange(rest.size) % k)
    folds = fold_of_block[inverse]
    if len(set(folds[labels.y == 1])) < min(k, with_pos.size):
        raise JanjaInputError("Too few deposit blocks for the folds: lower the number of folds or the block size.")
    return folds


def random_folds(labels, k, seed=0):
    """A random split of the windows (only as a comparison: neighbouring windows leak across folds)."""
    return np.random.default_rng(seed).permutation(np.arange(labels.y.size) % k)
