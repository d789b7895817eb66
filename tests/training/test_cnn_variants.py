"""CNN variants of the detection benchmark (bench/detect_cnn_variants.py, training/cnn_variants.py): the D4
orientations, the test-time mean's invariance, the stem cache's keys, and that a fine-tuned fold never
reads a held-out labelled cell."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from janja_plugin.training.classifier import ProspectivityClassifier
from janja_plugin.training.cnn_variants import (
    StemExtractor,
    Tail,
    cached_stem,
    d4,
    d4_mean,
    finetune_tail,
    tail_features,
)
from janja_plugin.training.head import HeadParams, train_head

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import detect_bench as db  # noqa: E402
import detect_cnn_variants as cv  # noqa: E402


def test_the_d4_orientations_are_the_8_distinct_symmetries_of_the_square():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5))
    views = [d4(x, k) for k in range(8)]
    assert np.array_equal(views[0], x)
    for a in range(8):
        for b in range(a + 1, 8):
            assert not np.array_equal(views[a], views[b]), (a, b)
    expected = [np.rot90(x, k, axes=(-2, -1)) for k in range(4)] + \
               [np.rot90(np.flip(x, -1), k, axes=(-2, -1)) for k in range(4)]  # rotations and reflections
    for v in views:
        assert sum(np.array_equal(v, e) for e in expected) == 1
    for a in range(8):  # a group: composing two orientations gives one of the eight
        for b in range(8):
            assert sum(np.array_equal(d4(views[a], b), v) for v in views) == 1


def test_the_test_time_mean_is_invariant_under_rotating_or_flipping_the_input():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(3, 7, 7))

    def score(w):  # an orientation-sensitive score
        return np.tanh((w * weights).sum(axis=(1, 2, 3)))

    x = rng.normal(size=(6, 3, 7, 7))
    base = d4_mean(score, x)
    assert not np.allclose(score(x), score(d4(x, 1)))  # the score alone does change
    for k in range(8):
        assert np.allclose(d4_mean(score, d4(x, k)), base)


class CountingExtractor:
    input_size, tag = 75, "fake"

    def __init__(self):
        self.calls = 0

    def __call__(self, windows):
        self.calls += 1
        return windows.reshape(len(windows), -1)[:, :4].copy() * 1.0 + windows.shape[-1]


def test_the_stem_cache_is_keyed_so_another_window_size_never_reads_a_stale_cache(tmp_path):
    t = np.random.default_rng(2).normal(size=(3, 40, 40)).astype(np.float32)
    rows, cols = np.array([10, 20, 30]), np.array([12, 22, 28])
    ex = CountingExtractor()
    a9 = cached_stem(ex, db.ds.cut_windows(t, rows, cols, 9), tmp_path, "label_o0")
    a15 = cached_stem(ex, db.ds.cut_windows(t, rows, cols, 15), tmp_path, "label_o0")
    assert ex.calls == 2 and not np.array_equal(a9, a15)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    again = cached_stem(ex, db.ds.cut_windows(t, rows, cols, 9), tmp_path, "label_o0")
    assert ex.calls == 2 and np.array_equal(again, a9)  # a true hit is read back
    rotated = cached_stem(ex, d4(db.ds.cut_windows(t, rows, cols, 9), 1), tmp_path, "label_o0")
    assert ex.calls == 3 and not np.array_equal(rotated, a9)  # same name and size, other orientation: no hit
    t2 = t.copy()
    t2[0, 10, 12] += 1.0  # same cells and size, changed data (e.g. another element list)
    cached_stem(ex, db.ds.cut_windows(t2, rows, cols, 9), tmp_path, "label_o0")
    assert ex.calls == 4


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    clf = ProspectivityClassifier(3, pretrained=False).eval()
    return clf, StemExtractor(clf, 75, threads=1, tag="random-init")


def _context(tiny, folder, y):
    clf, extractor = tiny
    rng = np.random.default_rng(3)
    t = rng.normal(size=(3, 36, 36)).astype(np.float32)
    rows, cols = rng.integers(0, 36, 40), rng.integers(0, 36, 40)
    labels = db.ds.Labels(rows, cols, y, np.arange(40), np.zeros(40))
    audit = db.Audit()
    return cv.Context(t, labels, np.arange(0, 36, 4), np.arange(0, 36, 4), extractor, Tail(clf), folder, audit), audit


def _fit(ctx, train, key):
    params = HeadParams(layers=1, dropout=0.5, lr=1e-3, batch=16, epochs=2)
    p, _ = cv.fit_fold(ctx, cv.VARIANTS["d4-finetune"], train, key, seed=0, gan_seed=1, gan_steps=2,
                       head_params=params, ft_epochs=1)
    return p


def test_a_finetuned_fold_never_reads_a_heldout_labelled_cell(tiny, tmp_path):
    y = np.array([1, 0, 0, 0] * 10)
    folds = np.arange(40) % 3
    ctx, audit = _context(tiny, tmp_path, y)
    train = np.nonzero(folds != 0)[0]
    p = _fit(ctx, train, "k")
    assert p.shape == (9,) and np.isfinite(p).all()
    assert audit.used["k"] == set(train.tolist())  # what the fit read: the training cells, and only those
    # and the held-out labels cannot matter: flip them all, the fine-tuned map is the same
    ctx2, _ = _context(tiny, tmp_path / "again", np.where(folds == 0, 1 - y, y))
    assert np.allclose(_fit(ctx2, train, "k"), p, atol=1e-6)


def test_the_audit_catches_a_fit_that_reads_the_heldout_fold(tiny, tmp_path):
    y = np.array([1, 0, 0, 0] * 10)
    ctx, audit = _context(tiny, tmp_path, y)
    _fit(ctx, np.arange(40), "leaky")
    assert audit.used["leaky"] & set(np.nonzero(np.arange(40) % 3 == 0)[0].tolist())


def test_finetuning_changes_copies_of_the_last_two_blocks_and_head_only(tiny):
    clf, _ = tiny
    tail = Tail(clf)
    before = {k: v.clone() for k, v in tail.state_dict().items()}
    rng = np.random.default_rng(4)
    acts = np.abs(rng.normal(size=(24, 1280, 1, 1))).astype(np.float32)
    y = np.array([0, 1] * 12)
    fit = train_head(tail_features(tail, acts), y, HeadParams(epochs=1, batch=8))
    tuned, fit2 = finetune_tail(tail, fit, acts, y, epochs=1, lr=1e-3, batch=8)
    assert all(torch.equal(before[k], v) for k, v in tail.state_dict().items())  # the shared trunk is untouched
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items())
    assert not torch.equal(next(fit.head.parameters()), next(fit2.head.parameters()))
    assert not any(p.requires_grad for p in list(tuned.parameters()) + list(fit2.head.parameters()))
