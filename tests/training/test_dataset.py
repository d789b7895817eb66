"""Training windows equal the inference engine's; labels by distance; spatial-block folds keep deposits whole."""

import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import model_card
from janja_plugin.core.inference.windows import ArrayStack, predict
from janja_plugin.training import dataset as ds


def small_stack(seed=0, shape=(3, 23, 31)):
    rng = np.random.default_rng(seed)
    data = np.exp(rng.normal(size=shape)).astype(np.float32)
    data[1, 4, 5] = np.nan  # a hole: filled with the element mean in both paths
    return ds.Stack(data, ["Au_ppb", "Ag_ppm", "Cu_ppm"], 1000.0, 5000.0, 100.0)


def card_for(specs, window, size):
    return model_card.card_from_dict({
        "schema_version": 1, "name": "capture", "model_kind": "supervised_classifier", "elements": specs,
        "input": {"channels": len(specs), "height": size, "width": size}, "window_pixels": window,
        "cell_size": 100.0, "class_names": ["background", "deposit"], "prospective_class": "deposit",
        "output_kind": "probabilities", "training": {"summary": "test"},
        "validation": {"method": "none", "metrics": {}},
        "pretrained": {"source": "none"}, "libraries": {}, "date": "2026-11-28"})


class CapturingSession:
    """Stands in for onnxruntime: records every window the engine sends."""

    def __init__(self):
        self.batches = []

    def run(self, _outputs, feeds):
        x = next(iter(feeds.values()))
        self.batches.append(x.copy())
        return [np.tile([[0.5, 0.5]], (len(x), 1)).astype(np.float32)]


@pytest.mark.parametrize("window,size", [(9, 9), (7, 75), (5, 12)])
def test_training_windows_equal_the_engine_windows(window, size):
    stack = small_stack()
    specs = ds.element_specs(stack, "ppm")
    card = card_for(specs, window, size)
    session = CapturingSession()
    model = type("M", (), {"card": card, "session": session, "input_name": "windows", "fixed_batch": None})()
    predict(model, ArrayStack(stack.data, stack.names), [0, 1, 2], prefetch=False)
    engine = np.concatenate(session.batches)  # cells in row-major order of valid centres
    t, ok = ds.transformed_stack(stack, specs)
    rows, cols = np.nonzero(ok)
    ours = ds.resize_windows(ds.cut_windows(t, rows, cols, window), size)
    assert engine.shape == ours.shape
    np.testing.assert_allclose(ours, engine, rtol=0, atol=2e-6)


def test_cut_windows_reflect_like_numpy_pad():
    t = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7)
    padded = np.pad(t, ((0, 0), (2, 2), (2, 2)), mode="reflect")
    win = ds.cut_windows(t, np.array([0, 5, 3]), np.array([0, 6, 2]), 5)
    for k, (r, c) in enumerate([(0, 0), (5, 6), (3, 2)]):
        np.testing.assert_array_equal(win[k], padded[:, r:r + 5, c:c + 5])


def test_labels_by_distance_and_unused_ring():
    stack = small_stack(shape=(3, 20, 20))
    _, ok = ds.transformed_stack(stack, ds.element_specs(stack))
    x, y = stack.cell_centres(np.array([10]), np.array([10]))
    lab = ds.label_cells(stack, ok, x, y, positive_within=100.0, negative_beyond=300.0, max_negatives=10**6)
    # cells whose centre is within 100 m of the deposit cell's centre: itself and its 4 edge neighbours
    assert lab.counts["positive"] == 5
    cx, cy = stack.cell_centres(lab.rows, lab.cols)
    d = np.hypot(cx - x[0], cy - y[0])
    assert np.all(d[lab.y == 1] <= 100.0) and np.all(d[lab.y == 0] > 300.0)
    ax, ay = stack.cell_centres(*np.nonzero(ok))
    d_all = np.hypot(ax - x[0], ay - y[0])
    assert lab.counts["between_unused"] == int(((d_all > 100) & (d_all <= 300)).sum())


def test_no_deposit_inside_is_a_clear_error():
    stack = small_stack(shape=(3, 10, 10))
    _, ok = ds.transformed_stack(stack, ds.element_specs(stack))
    with pytest.raises(JanjaInputError, match="within"):
        ds.label_cells(stack, ok, np.array([0.0]), np.array([0.0]), 100.0, 300.0)


def test_spatial_block_folds_keep_each_deposit_in_one_fold():
    rng = np.random.default_rng(3)
    stack = small_stack(shape=(3, 80, 80))
    _, ok = ds.transformed_stack(stack, ds.element_specs(stack))
    cx, cy = stack.cell_centres(rng.integers(5, 75, 12), rng.integers(5, 75, 12))
    lab = ds.label_cells(stack, ok, cx, cy, 250.0, 600.0, 2000)
    for seed in range(3):
        folds = ds.spatial_block_folds(stack, lab, cx, cy, block_size=1500.0, k=4, seed=seed)
        for d in np.unique(lab.nearest_deposit[lab.y == 1]):
            assert len(set(folds[(lab.y == 1) & (lab.nearest_deposit == d)])) == 1
        assert set(folds) == {0, 1, 2, 3}
    # a random split, by contrast, puts one deposit's windows on both sides
    rnd = ds.random_folds(lab, 4, seed=0)
    deposits = np.unique(lab.nearest_deposit[lab.y == 1])
    split = [len(set(rnd[(lab.y == 1) & (lab.nearest_deposit == d)])) for d in deposits]
    assert max(split) > 1
