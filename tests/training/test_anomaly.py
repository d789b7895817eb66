"""f-AnoGAN anomaly model: planted multivariate anomalies that no single element reveals.

The synthetic survey: five elements that all follow one smooth field (each a log-normal in ppm with
its own level), plus small noise. In ten 4 x 4 patches the elements split: Au and Ag take a value a,
Cu, Pb and Zn take -a (|a| between 1 and 2 standard deviations, random sign per patch). The element
values in a patch are common in the bulk (mostly within its 2.5th-97.5th percentiles), so no
single-element threshold finds the patches; only the combination is rare. The model is trained on
the stack alone, exported to ONNX and run through the plugin's own engine (core.inference.anomaly_score), as
janja:anomaly_score runs it.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from janja_plugin.core.evaluation.evaluate import auc_mann_whitney  # noqa: E402
from janja_plugin.core.inference import anomaly_score as core_anomaly  # noqa: E402
from janja_plugin.core.inference import model_card as mc  # noqa: E402
from janja_plugin.core.inference import windows as wn  # noqa: E402
from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402
from janja_plugin.training import anomaly as ta  # noqa: E402

NAMES = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]
LEVELS = np.array([-2.5, -1.5, 1.0, 1.2, 1.5])  # log10 ppm of each element at the field's mean
SIGN = np.array([1, 1, -1, -1, -1])  # how the elements split inside a planted patch
N, PATCH, N_PATCHES = 64, 4, 10
GRID = Grid(400000.0, 6500000.0, 250.0, N, N)


def smooth_field(rng, sigma=3.0):
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.normal(size=(N, N)), sigma, mode="reflect")
    return (f - f.mean()) / f.std()


def planted_survey(seed=0):
    """(ppm (5, N, N), z (5, N, N) standardised log values, patch mask, buffer mask) with planted patches."""
    rng = np.random.default_rng(seed)
    f = smooth_field(rng)
    z = f[None] + 0.1 * rng.normal(size=(5, N, N))
    patch = np.zeros((N, N), bool)
    cells = [(r, c) for r in range(4, N - 8, 9) for c in range(4, N - 8, 9)]
    for k in rng.choice(len(cells), size=N_PATCHES, replace=False):
        r, c = cells[k]
        a = rng.uniform(1.0, 2.0) * rng.choice([-1, 1])
        z[:, r:r + PATCH, c:c + PATCH] = (SIGN * a)[:, None, None] + 0.1 * rng.normal(size=(5, PATCH, PATCH))
        patch[r:r + PATCH, c:c + PATCH] = True
    from scipy.ndimage import binary_dilation

    near = binary_dilation(patch, iterations=2) & ~patch  # windows here overlap a patch: neither class
    ppm = 10 ** (LEVELS[:, None, None] + 0.3 * z)
    return ppm, z, patch, near


def best_single_element_auc(ppm, patch, near):
    """The best AUC any one element reaches, high or low values counted as anomalous (the most generous)."""
    neg = ~patch & ~near
    best = 0.0
    for band in ppm:
        auc = auc_mann_whitney(band[patch], band[neg])
        best = max(best, auc, 1.0 - auc)
    return best


def test_planted_patches_are_unremarkable_element_by_element():
    ppm, z, patch, near = planted_survey()
    for i in range(5):  # each element's patch values lie inside the bulk's central 95 %
        lo, hi = np.percentile(z[i][~patch], [2.5, 97.5])
        assert np.mean((z[i][patch] > lo) & (z[i][patch] < hi)) > 0.75
    assert best_single_element_auc(ppm, patch, near) < 0.7


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anomaly")
    ppm, z, patch, near = planted_survey()
    stack = write_stack(tmp / "stack.tif", list(ppm), NAMES, GRID, "EPSG:32750")
    settings = ta.AnomalySettings(window=5, size=5, n_windows=3000, holdout=0.2, latent=8, hidden=64,
                                  gan_steps=800, encoder_steps=800, batch=64, threads=1, quantiles=100)
    run = ta.train(stack, tmp / "model", settings, name="synthetic", run_map=False, log=lambda *_: None)
    return run, stack, ppm, patch, near, tmp


def test_gan_score_finds_the_planted_anomalies_and_single_elements_do_not(trained):
    run, stack, ppm, patch, near, _ = trained
    result = core_anomaly.run_anomaly_score(stack, run.onnx_path, core_anomaly.AnomalySettings(threads=1))
    score = result.score
    neg = ~patch & ~near
    gan_auc = auc_mann_whitney(score[patch], score[neg])
    single = best_single_element_auc(ppm, patch, near)
    print(f"planted anomalies: f-AnoGAN AUC {gan_auc:.3f}, best single element {single:.3f}")
    assert gan_auc > 0.9
    assert single < 0.7
    assert np.nanmin(score) >= 0.0 and np.nanmax(score) <= 1.0


def test_export_card_and_calibration(trained):
    run, stack, *_ = trained
    assert run.export_max_diff < 1e-4  # onnxruntime gives what torch gives
    model = mc.load_model(run.onnx_path, threads=1)
    assert model.card.model_kind == "unsupervised_anomaly" and model.card.output_kind == "score"
    assert json.loads(mc.card_path_for(run.onnx_path).read_text()) == model.card.raw
    # the 0..1 map is the training windows' empirical CDF: their median maps to about one half
    knots = ta.calibration(run.train_scores, 100)
    mapped = ta.calibrate(run.train_scores, knots)
    assert np.median(mapped) == pytest.approx(0.5, abs=0.02)
    assert np.all(np.diff(ta.calibrate(np.sort(run.train_scores), knots)) >= 0)
    above = ta.calibrate(np.array([knots[0][-1] * 2, knots[0][-1] * 4]), knots)
    assert 0.999 < above[0] < above[1] < 1.0  # the tail still ranks


def test_card_records_its_training_data(trained):
    """training_data: percentiles of log10(ppm) over every valid cell (not the standardised values), no sites."""
    run, _, ppm, *_ = trained
    td = mc.load_model(run.onnx_path, threads=1).card.raw["training_data"]
    assert td["input_quantiles"]["percent"] == [0, 1, 5, 25, 50, 75, 95, 99, 100]
    for name, band in zip(NAMES, ppm):
        v = np.log10(band[np.isfinite(band)].astype(np.float32).astype(float))
        np.testing.assert_allclose(td["input_quantiles"]["values"][name], np.percentile(v, td["input_quantiles"][
            "percent"]), rtol=1e-5, atol=1e-6)
    assert td["cell_size"] == GRID.cell and td["sample_spacing"] is None
    assert td["sites"] == {"crs": "EPSG:32750", "xy": []}  # unsupervised: no deposits were read


def test_training_windows_are_the_engines_windows(trained):
    """The windows training cuts equal the ones the inference engine feeds the model, value for value."""
    run, stack, *_ = trained
    card = mc.card_from_dict(run.card)
    with wn.RasterStack(stack) as st:
        data = st.read(0, st.nrows, list(range(5)))
    cells = (np.array([0, 10, 63, 31]), np.array([0, 40, 63, 2]))  # corners use the reflection
    x, index = ta.cut_windows(card, wn.ArrayStack(data, NAMES), list(range(5)), cells)
    t = wn.transform_values(data, card.elements)
    for r, c in zip(*cells):
        rows = wn.reflect_index(np.arange(r - 2, r + 3), N)
        cols = wn.reflect_index(np.arange(c - 2, c + 3), N)
        expected = t[:, rows][:, :, cols]
        np.testing.assert_allclose(x[index[r, c]], expected, atol=1e-6)


def test_report_has_loss_curves_and_score_histograms(trained):
    run, _, _, _, _, tmp = trained
    html = ta.write_report(run, tmp / "report.html").read_text()
    assert "Loss curves" in html and "Score histograms" in html and html.count("<svg") >= 4
    assert len(run.log.wasserstein) == run.settings.gan_steps and len(run.log.encoder) == run.settings.encoder_steps


def test_cli_refuses_an_even_window(tmp_path, capsys):
    ppm, *_ = planted_survey()
    stack = write_stack(tmp_path / "s.tif", list(ppm), NAMES, GRID, "EPSG:32750")
    rc = ta.main(["--stack", str(stack), "--out", str(tmp_path / "o"), "--window", "4", "--no-bundle"])
    assert rc == 1
    assert "odd number of cells" in capsys.readouterr().err


def test_cli_bundles_only_when_the_model_is_named(tmp_path, monkeypatch, capsys):
    """Copying into models/wa_anomaly replaces janja:anomaly_score's default: refused unless named, before training."""
    def never(*a, **k):
        raise AssertionError("trained although the bundle request was refused")

    monkeypatch.setattr(ta, "train", never)
    for flags in (["--bundle"], ["--bundle", "other"]):
        rc = ta.main(["--stack", str(tmp_path / "s.tif"), "--out", str(tmp_path / "o"), *flags])
        assert rc == 2
        assert f"--bundle {ta.BUNDLED_NAME}" in capsys.readouterr().err
