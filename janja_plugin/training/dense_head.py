"""Shared-trunk features for training a head on them (config "head_features": "dense").

janja:prospectivity's shared-trunk mode (core/inference/dense.py) runs the trunk once over the stack and reads
each cell's features off the feature map. Those features differ from a lone window's (the trunk sees the
neighbouring cells instead of zero padding, and the resize does not clamp at the window's edge), so a head
trained window by window gives a different, meaningless map there. Here the features of the labelled and the
sample cells are computed by that same engine (features_at) from the exported trunk part, so a head fit on them
and exported with export_dense_parts(..., head=) makes the fast mode the model itself.
"""

import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..core.errors import JanjaInputError
from ..core.inference import dense
from ..core.inference import model_card as mc
from ..core.inference.windows import ArrayStack
from .export_dense import export_dense_parts


def engine_card(cfg, specs, cell):
    """The smallest valid card the engine needs to read a stack as the exported model will (not written out)."""
    return {
        "schema_version": 1, "name": f"{cfg.name} (trunk for shared-trunk features)",
        "model_kind": "supervised_classifier", "elements": specs,
        "input": {"channels": len(specs), "height": cfg.input_size, "width": cfg.input_size,
                  "channel_map": list(range(len(specs))), "resize": "bilinear_half_pixel"},
        "window_pixels": cfg.window_pixels, "cell_size": float(cell), "cell_size_tolerance": 0.01, "crs": None,
        "class_names": ["background", "deposit"], "prospective_class": "deposit", "output_kind": "probabilities",
        "training": {"summary": "in training"}, "validation": {"method": "none", "metrics": {}},
        "pretrained": {"source": "see the final card"}, "libraries": {}, "date": "1970-01-01",
    }


class DenseFeatures:
    """features_at(...) of one classifier's frozen trunk over one stack, at any cells, in the order asked."""

    def __init__(self, classifier, cfg, specs, stack, shifts=1):
        """classifier: a ProspectivityClassifier (its adapter + trunk are exported); specs: card 'elements' of
        stack's bands in order; stack: a dataset.Stack holding those bands (NaN = missing)."""
        self.stack = stack
        self.shifts = shifts
        self._tmp = tempfile.TemporaryDirectory()
        path = Path(self._tmp.name) / "trunk_probe.onnx"
        card = export_dense_parts(classifier, path, engine_card(cfg, specs, stack.cell), shifts=shifts)
        self.model = SimpleNamespace(card=mc.card_from_dict(card, "the training trunk's card"), path=path,
                                     threads=int(cfg.threads or 0))
        self.parts = dense.load_parts(self.model)
        self.seconds = 0.0
        self.count = 0

    def __call__(self, rows, cols):
        """(n, features) float32 at cells (rows, cols); NaN rows where the cell is no valid window centre."""
        import time

        rows, cols = np.asarray(rows, int), np.asarray(cols, int)
        st = self.stack
        cells = np.zeros(st.data.shape[1:], bool)
        cells[rows, cols] = True
        t0 = time.perf_counter()
        r, c, x = dense.features_at(self.model, self.parts, ArrayStack(st.data, st.names), list(range(len(st.names))),
                                    cells, shifts=self.shifts)
        self.seconds += time.perf_counter() - t0
        self.count += int(cells.sum())
        lookup = np.full(cells.shape, -1)
        lookup[r, c] = np.arange(r.size)
        at = lookup[rows, cols]
        out = np.full((rows.size, self.parts.head.get_inputs()[0].shape[1] or x.shape[1]), np.nan, np.float32)
        out[at >= 0] = x[at[at >= 0]]
        return out

    def labelled(self, rows, cols, what="labelled cells"):
        """As __call__, but every cell must be a valid window centre (labelled cells always are)."""
        x = self(rows, cols)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise JanjaInputError(f"{int(bad.sum())} of the {what} have no shared-trunk features (no value at the "
                                  "window's centre): this should not happen for labels drawn from valid cells.")
        return x

    def close(self):
        self._tmp.cleanup()
