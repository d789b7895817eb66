"""f-AnoGAN (Schlegl et al. 2019): an unsupervised anomaly model of the element stack's own windows.

No labels: a WGAN-GP (Gulrajani et al. 2017) learns what windows of the survey look like, then an
encoder is trained to map a window to the latent code whose generated window matches it (the "izi_f"
scheme: image residual plus critic-feature residual, generator and critic frozen). A window unlike the
bulk of the area is reconstructed badly, so its score

    s(x) = mean((x - G(E(x)))²) + kappa · mean((f(x) - f(G(E(x))))²)      (f: critic's last hidden layer)

is high. The exported ONNX graph ends in a fixed monotone map of s onto 0..1 (output_kind "score"):
the empirical CDF of the training windows' raw scores, interpolated linearly between 200 quantiles up
to the 99.9th percentile, then 1 - exp(-excess / scale) over the last 0.1 % so the tail still ranks.
A map value of 0.95 therefore reads "scores higher than 95 % of the survey's windows".

Windows are cut by the inference engine's own code (core.inference.windows: the card transform, reflection at
the edges, the bilinear resize), so the model sees in training exactly what janja:anomaly_score shows
it. Known deposits are never read here: nothing in training or model selection sees them.

    python -m janja_plugin.training.anomaly --stack out/wa/wa_stack_250m.tif --out out/train_anomaly
"""

import argparse
import json
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from ..core.errors import JanjaInputError
from ..core.inference import model_card as mc
from ..core.inference import windows as wn
from .training_data import training_data

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "models" / "wa_anomaly"  # a folder of its own: models/*.onnx are classifiers
BUNDLED_NAME = "wa_anomaly_fanogan"
UNITS = {"ppm": "ppm", "ppb": "ppb", "pct": "%", "percent": "%"}


@dataclass
class AnomalySettings:
    window: int = 15  # window side in stack cells (odd)
    size: int = 9  # model input side (the window is resized to size x size)
    elements: tuple = ()  # band descriptions to use; () = every band
    transform: str = "log10"
    n_windows: int = 40000  # training windows drawn at random (centres whose window has no missing value)
    holdout: float = 0.2  # share of the rows (in spatial blocks of one window) held out to watch overfitting
    latent: int = 32
    hidden: int = 256
    gan_steps: int = 3000  # generator updates
    critic_steps: int = 5
    penalty: float = 10.0
    encoder_steps: int = 3000
    kappa: float = 1.0  # weight of the critic-feature residual in the score
    lr: float = 1e-4
    batch: int = 128
    augment: bool = True  # random rotations/flips of each window (the score should not depend on north)
    quantiles: int = 200
    tail_level: float = 0.999
    seed: int = 0
    threads: int = 1


@dataclass
class TrainingLog:
    critic: list = field(default_factory=list)  # critic loss incl. gradient penalty, per generator step
    wasserstein: list = field(default_factory=list)  # critic(real) - critic(fake)
    penalty: list = field(default_factory=list)
    generator: list = field(default_factory=list)
    encoder: list = field(default_factory=list)  # izi_f loss on training batches
    encoder_holdout: list = field(default_factory=list)  # (step, loss) on the held-out windows
    gan_seconds: float = 0.0
    encoder_seconds: float = 0.0


# --- data: windows cut by the inference engine ----------------------------------------------------

def read_stack(path, elements=()):
    """(data (E, rows, cols) float32 NaN = missing, names, grid, crs_wkt) of a janja:krige stack."""
    with wn.RasterStack(path) as st:
        if not st.square:
            raise JanjaInputError(f"The stack {path} does not have square, north-up cells; warp it first.")
        names = st.names
        bands = list(range(len(names)))
        if elements:
            missing = [e for e in elements if e not in names]
            if missing:
                raise JanjaInputError(f"The stack {path} has no band(s) {missing}; its bands are {names}.")
            bands = [names.index(e) for e in elements]
        if any(not names[b] for b in bands):
            raise JanjaInputError(f"Every band of {path} needs a description naming its element (janja:krige's "
                                  "layout), but some have none.")
        data = st.read(0, st.nrows, bands)
        return data, [names[b] for b in bands], st.grid(), st.crs_wkt


def element_stats(data, names, transform="log10"):
    """Card element entries: the transform and the mean/std of the transformed values over the stack."""
    out = []
    for band, name in zip(data, names):
        v = band[np.isfinite(band)].astype(np.float64)
        if transform in ("log10", "ln"):
            v = v[v > 0]
            v = np.log10(v) if transform == "log10" else np.log(v)
        if v.size < 10 or not np.isfinite(v.std()) or v.std() <= 0:
            raise JanjaInputError(f"The band {name} has too few usable values (or all equal) to standardise.")
        unit = UNITS.get(name.rsplit("_", 1)[-1].lower(), name.rsplit("_", 1)[-1]) if "_" in name else "unknown"
        out.append({"name": name, "unit": unit, "transform": transform, "mean": float(v.mean()),
                    "std": float(v.std())})
    return out


def card_dict(elements, settings, cell_size, crs=None, training=None, metrics=None, libraries=None):
    """The janja model card of an unsupervised anomaly model (output: one score in 0..1)."""
    return {
        "schema_version": 1,
        "name": "f-AnoGAN anomaly score",
        "description": ("Unsupervised anomaly model (f-AnoGAN: WGAN-GP + encoder, score = window residual + "
                        "critic-feature residual, mapped to 0..1 by the empirical CDF of the training windows' "
                        "scores). Trained on the stack alone: no deposits, no labels. High = the window's "
                        "multivariate pattern is unlike the bulk of the training area."),
        "model_kind": "unsupervised_anomaly",
        "elements": elements,
        "input": {"channels": len(elements), "height": settings.size, "width": settings.size,
                  "resize": "bilinear_half_pixel"},
        "window_pixels": settings.window,
        "cell_size": float(cell_size),
        "cell_size_tolerance": 0.05,
        "crs": crs,
        "class_names": ["anomaly"],
        "prospective_class": "anomaly",
        "output_kind": "score",
        "training": training or {"summary": "untrained"},
        "validation": {"method": "none", "description": (
            "Unsupervised: no labels were used for training or model selection. Known deposits serve only "
            "to evaluate the map afterwards (README, OpenGADBench sample protocol)."), "metrics": metrics or {}},
        "pretrained": {"source": "none: trained from scratch on the survey's own element stack"},
        "libraries": libraries or {},
        "date": date.today().isoformat(),
    }


def holdout_rows(nrows, window, share, seed):
    """Bool per row: True = held out. Bands of `window` rows, so held-out windows rarely overlap training ones."""
    rng = np.random.default_rng(seed + 1)
    n_blocks = int(np.ceil(nrows / window))
    held = rng.random(n_blocks) < share
    if share > 0 and not held.any():
        held[rng.integers(n_blocks)] = True
    return np.repeat(held, window)[:nrows]


def cut_windows(card, stack, bands, cells, batch=4096):
    """Model inputs (n, C, H, W) of the given (rows, cols) cells, cut by the engine's own _Preparer."""
    rows, cols = cells
    want_mask = np.zeros((stack.nrows, stack.ncols), bool)
    want_mask[rows, cols] = True
    prep = wn._Preparer(card, stack, bands, batch)
    out = np.empty((want_mask.sum(), card.channels, card.input_height, card.input_width), np.float32)
    index = -np.ones((stack.nrows, stack.ncols), np.int64)
    index[np.nonzero(want_mask)] = np.arange(out.shape[0])
    stats = wn.EngineStats()
    for r, c, x, _ in prep.batches(lambda r0, r1: want_mask[r0:r1], np.zeros_like(want_mask), stats,
                                   threading.Event()):
        out[index[r, c]] = x
    return out, index


def training_windows(data, names, grid, settings):
    """Card (dict, ModelCard), train and held-out windows, and the stack wrapper, from the stack array."""
    elements = element_stats(data, names, settings.transform)
    card_d = card_dict(elements, settings, grid.cell)
    card = mc.card_from_dict(card_d, "the anomaly model card")
    stack = wn.ArrayStack(data, names)
    bands = list(range(len(names)))
    t = wn.transform_values(data, card.elements)
    bad = (~np.isfinite(t)).any(axis=0)
    h = settings.window // 2
    rr = wn.reflect_index(np.arange(-h, stack.nrows + h), stack.nrows)
    cc = wn.reflect_index(np.arange(-h, stack.ncols + h), stack.ncols)
    clean = (wn._window_sums(bad[rr][:, cc].astype(np.int32), settings.window) == 0) & ~bad
    if clean.sum() < 100:
        raise JanjaInputError(f"Only {int(clean.sum())} cells have a complete {settings.window} x {settings.window} "
                              "window: the stack is too small or too gappy to learn from.")
    held = holdout_rows(stack.nrows, settings.window, settings.holdout, settings.seed)
    rng = np.random.default_rng(settings.seed)
    sets = {}
    for name, rows_ok, n in (("train", ~held, settings.n_windows),
                             ("holdout", held, max(500, int(settings.n_windows * settings.holdout / 4)))):
        r, c = np.nonzero(clean & rows_ok[:, None])
        if r.size == 0:
            sets[name] = np.empty((0, card.channels, card.input_height, card.input_width), np.float32)
            continue
        pick = rng.choice(r.size, size=min(n, r.size), replace=False)
        sets[name] = cut_windows(card, stack, bands, (r[pick], c[pick]))[0]
    return card_d, card, sets["train"], sets["holdout"], stack, bands


# --- the networks -----------------------------------------------------------------------------------

def _torch():
    import torch
    from torch import nn

    return torch, nn


def build_networks(dim, settings):
    torch, nn = _torch()

    def mlp(sizes):
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        return nn.Sequential(*layers[:-1])

    hid = settings.hidden
    generator = mlp([settings.latent, hid, hid, dim])
    critic_features = nn.Sequential(nn.Linear(dim, hid), nn.LeakyReLU(0.2), nn.Linear(hid, hid), nn.LeakyReLU(0.2))
    critic_head = nn.Linear(hid, 1)
    encoder = mlp([dim, hid, hid, settings.latent])
    return generator, critic_features, critic_head, encoder


def _augment(torch, x, gen):
    """Random rotation by k·90° and flip, one draw per batch (cheap, and the map has no preferred north)."""
    k = int(torch.randint(4, (1,), generator=gen))
    x = torch.rot90(x, k, dims=(2, 3))
    if int(torch.randint(2, (1,), generator=gen)):
        x = torch.flip(x, dims=(3,))
    return x


def train_fanogan(train, holdout, settings, progress=None):
    """Train the WGAN-GP then the izi_f encoder on windows (n, C, hnet, W). Returns (networks, TrainingLog)."""
    torch, nn = _torch()
    torch.set_num_threads(max(1, int(settings.threads)))
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    x_all = torch.from_numpy(np.ascontiguousarray(train))
    n, shape = x_all.shape[0], tuple(x_all.shape[1:])
    dim = int(np.prod(shape))
    gnet, fnet, hnet, enet = build_networks(dim, settings)
    opt_g = torch.optim.Adam(gnet.parameters(), lr=settings.lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(list(fnet.parameters()) + list(hnet.parameters()), lr=settings.lr, betas=(0.0, 0.9))
    log = TrainingLog()
    b = settings.batch

    def batch():
        x = x_all[torch.randint(n, (b,), generator=gen)]
        if settings.augment and shape[1] == shape[2]:
            x = _augment(torch, x, gen)
        return x.reshape(b, dim)

    t0 = time.perf_counter()
    for step in range(settings.gan_steps):
        for _ in range(settings.critic_steps):
            real = batch()
            with torch.no_grad():
                fake = gnet(torch.randn(b, settings.latent, generator=gen))
            eps = torch.rand(b, 1, generator=gen)
            mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
            grad = torch.autograd.grad(hnet(fnet(mix)).sum(), mix, create_graph=True)[0]
            gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
            w = hnet(fnet(real)).mean() - hnet(fnet(fake)).mean()
            loss_d = -w + settings.penalty * gp
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        loss_g = -hnet(fnet(gnet(torch.randn(b, settings.latent, generator=gen)))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        log.critic.append(float(loss_d.detach()))
        log.wasserstein.append(float(w.detach()))
        log.penalty.append(float(gp.detach()))
        log.generator.append(float(loss_g.detach()))
        if progress and step % 100 == 0:
            progress(f"GAN step {step}/{settings.gan_steps}: W {log.wasserstein[-1]:.3f}, GP {log.penalty[-1]:.3f}")
    log.gan_seconds = time.perf_counter() - t0

    for p in list(gnet.parameters()) + list(fnet.parameters()) + list(hnet.parameters()):
        p.requires_grad_(False)
    gnet.eval(), fnet.eval(), hnet.eval()
    opt_e = torch.optim.Adam(enet.parameters(), lr=settings.lr * 2, betas=(0.5, 0.999))
    x_hold = torch.from_numpy(np.ascontiguousarray(holdout)).reshape(len(holdout), dim) if len(holdout) else None
    t0 = time.perf_counter()
    for step in range(settings.encoder_steps):
        x = batch()
        xr = gnet(enet(x))
        loss = ((x - xr) ** 2).mean() + settings.kappa * ((fnet(x) - fnet(xr)) ** 2).mean()
        opt_e.zero_grad()
        loss.backward()
        opt_e.step()
        log.encoder.append(float(loss.detach()))
        if x_hold is not None and (step % 100 == 0 or step == settings.encoder_steps - 1):
            with torch.no_grad():
                held = raw_scores_torch(gnet, fnet, enet, x_hold, settings.kappa)
                log.encoder_holdout.append((step, float(held.mean())))
        if progress and step % 500 == 0:
            progress(f"encoder step {step}/{settings.encoder_steps}: loss {float(loss):.4f}")
    log.encoder_seconds = time.perf_counter() - t0
    enet.eval()
    return (gnet, fnet, hnet, enet), log


def raw_scores_torch(gnet, fnet, enet, x, kappa):
    xr = gnet(enet(x))
    return ((x - xr) ** 2).mean(dim=1) + kappa * ((fnet(x) - fnet(xr)) ** 2).mean(dim=1)


def raw_scores(nets, windows, kappa, batch=4096):
    """The f-AnoGAN score of windows (n, C, hnet, W), as numpy (before the 0..1 map)."""
    torch, _ = _torch()
    gnet, fnet, _, enet = nets
    out = []
    with torch.no_grad():
        for s in range(0, len(windows), batch):
            x = torch.from_numpy(np.ascontiguousarray(windows[s:s + batch]))
            x = x.reshape(len(x), -1)
            out.append(raw_scores_torch(gnet, fnet, enet, x, kappa).numpy())
    return np.concatenate(out) if out else np.empty(0, np.float32)


def calibration(scores, n_quantiles=200, tail_level=0.999):
    """Knots of the monotone map raw score -> 0..1: ECDF quantiles (strictly increasing) and the tail scale."""
    s = np.sort(np.asarray(scores, np.float64))
    levels = np.linspace(0.0, tail_level, n_quantiles + 1)
    q = np.quantile(s, levels)
    spread = max(float(q[-1] - q[0]), 1e-12)
    q = q + np.arange(q.size) * spread * 1e-9  # ties (flat stretches) would divide by zero
    q = np.maximum.accumulate(q)
    excess = s[s > q[-1]] - q[-1]
    tail = float(excess.mean()) if excess.size else float(q[-1] - q[-2])
    return q, levels, max(tail, 1e-12)


def calibrate(raw, knots):
    """numpy twin of the graph's map (used to check the export)."""
    q, levels, tail = knots
    raw = np.asarray(raw, np.float64)[:, None]
    frac = np.clip((raw - q[:-1]) / np.diff(q), 0.0, 1.0)
    return frac @ np.diff(levels) + (1 - levels[-1]) * (1 - np.exp(-np.maximum(raw[:, 0] - q[-1], 0) / tail))


def score_module(nets, knots, shape, kappa):
    """(N, C, H, W) -> (N, 1) score in 0..1: encoder, generator, critic features, then the calibration map."""
    torch, nn = _torch()
    gnet, fnet, _, enet = nets
    q, levels, tail = knots

    class Score(nn.Module):
        def __init__(self):
            super().__init__()
            self.G, self.F, self.E = gnet, fnet, enet
            self.register_buffer("q0", torch.tensor(q[:-1], dtype=torch.float32))
            self.register_buffer("dq", torch.tensor(np.diff(q), dtype=torch.float32))
            self.register_buffer("dp", torch.tensor(np.diff(levels)[:, None], dtype=torch.float32))
            self.q_last, self.tail, self.p_last = float(q[-1]), float(tail), float(levels[-1])

        def forward(self, x):
            flat = torch.flatten(x, 1)
            xr = self.G(self.E(flat))
            s = ((flat - xr) ** 2).mean(dim=1, keepdim=True)
            s = s + kappa * ((self.F(flat) - self.F(xr)) ** 2).mean(dim=1, keepdim=True)
            body = torch.clamp((s - self.q0) / self.dq, 0.0, 1.0) @ self.dp
            excess = torch.relu(s - self.q_last)
            return body + (1.0 - self.p_last) * (1.0 - torch.exp(-excess / self.tail))

    return Score().eval()


def export_onnx(module, shape, path, card_d):
    """Write the ONNX (opset 17, dynamic batch) with the card embedded, and the card JSON beside it."""
    torch, _ = _torch()
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.part")
    dummy = torch.zeros((2,) + tuple(shape))
    torch.onnx.export(module, dummy, str(tmp), input_names=["x"], output_names=["score"],
                      dynamic_axes={"x": {0: "N"}, "score": {0: "N"}}, opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    mc.embed_card(model, card_d)
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp))
    json_tmp = mc.card_path_for(path).with_suffix(".json.part")
    json_tmp.write_text(json.dumps(card_d, indent=2))
    tmp.replace(path)
    json_tmp.replace(mc.card_path_for(path))
    return path


# --- the whole run ----------------------------------------------------------------------------------

@dataclass
class AnomalyRun:
    onnx_path: Path
    card: dict
    log: TrainingLog
    train_scores: np.ndarray  # raw scores of the training windows
    holdout_scores: np.ndarray
    export_max_diff: float  # |onnxruntime - torch| on held-out windows
    map_scores: np.ndarray | None  # the exported model run over the whole stack by the inference engine
    seconds: float
    settings: AnomalySettings


def libraries():
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__}


def train(stack_path, out_dir, settings=None, name="fanogan_anomaly", run_map=True, log=print):
    """Train on the stack, export <out>/<name>.onnx + .json, and (run_map) score the whole stack with it."""
    settings = settings or AnomalySettings()
    if settings.window % 2 == 0:
        raise JanjaInputError(f"The window must be an odd number of cells, not {settings.window}.")
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, names, grid, crs_wkt = read_stack(stack_path, settings.elements)
    card_d, card, train_x, hold_x, stack, bands = training_windows(data, names, grid, settings)
    log(f"{len(train_x):,} training and {len(hold_x):,} held-out windows of {settings.window} x {settings.window} "
        f"cells ({', '.join(names)}) -> {card.channels} x {card.input_height} x {card.input_width}")
    nets, tlog = train_fanogan(train_x, hold_x, settings, progress=log)
    train_scores = raw_scores(nets, train_x, settings.kappa)
    hold_scores = raw_scores(nets, hold_x, settings.kappa) if len(hold_x) else np.empty(0)
    knots = calibration(train_scores, settings.quantiles, settings.tail_level)
    crs = _epsg(crs_wkt)
    card_d = card_dict(
        card_d["elements"], settings, grid.cell, crs=crs,
        training={
            "summary": (f"f-AnoGAN on {len(train_x):,} windows ({settings.window} x {settings.window} cells of "
                        f"{grid.cell:g} m, rotated/flipped) of the stack {Path(stack_path).name}; no labels. "
                        f"WGAN-GP {settings.gan_steps} generator steps, encoder (izi_f, kappa {settings.kappa:g}) "
                        f"{settings.encoder_steps} steps; {tlog.gan_seconds + tlog.encoder_seconds:.0f} s on "
                        f"{settings.threads} CPU thread(s)."),
            "stack": Path(stack_path).name, "n_windows": int(len(train_x)), "n_holdout_windows": int(len(hold_x)),
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
            "score_map": ("0..1 = empirical CDF of the training windows' raw f-AnoGAN scores (linear between "
                          f"{settings.quantiles} quantiles up to the {100 * settings.tail_level:g}th percentile), "
                          "then 1 - exp(-excess/scale) above it"),
            "raw_score_quantiles": {"p50": float(np.quantile(train_scores, 0.5)),
                                    "p95": float(np.quantile(train_scores, 0.95)),
                                    "p99": float(np.quantile(train_scores, 0.99))},
        },
        metrics={"holdout_median_raw_score_ratio": float(np.median(hold_scores) / np.median(train_scores))
                 if len(hold_scores) else None} if len(hold_scores) else {},
        libraries=libraries(),
    )
    # What the model saw (no deposits: unsupervised; a gridded stack: no sample spacing).
    card_d["training_data"] = training_data(data, card_d["elements"], grid.cell, None, [], [], crs_wkt)
    mc.card_from_dict(card_d, "the exported anomaly card")  # refuse to write an invalid card
    module = score_module(nets, knots, train_x.shape[1:], settings.kappa)
    onnx_path = export_onnx(module, train_x.shape[1:], out_dir / f"{name}.onnx", card_d)
    model = mc.load_model(onnx_path, threads=settings.threads)
    check = hold_x[:512] if len(hold_x) else train_x[:512]
    got = model.session.run(None, {model.input_name: check})[0][:, 0]
    want = calibrate(raw_scores(nets, check, settings.kappa), knots)
    diff = float(np.max(np.abs(got - want)))
    log(f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB); onnxruntime vs torch max |diff| {diff:.2e}")
    map_scores = None
    if run_map:
        map_scores, _, st = wn.predict(model, stack, bands, batch_size=1024)
        log(f"scored the whole stack: {st.n_windows:,} windows in {st.seconds:.1f} s")
    return AnomalyRun(onnx_path, card_d, tlog, train_scores, hold_scores, diff, map_scores,
                      time.perf_counter() - t_start, settings)


def _epsg(crs_wkt):
    if not crs_wkt:
        return None
    try:
        from osgeo import osr

        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        srs.AutoIdentifyEPSG()
        code = srs.GetAuthorityCode(None)
        return f"EPSG:{code}" if code else None
    except Exception:  # the CRS is then not enforced by the card; the cell size still is
        return None


# --- report -----------------------------------------------------------------------------------------

def _smooth(values, n=50):
    v = np.asarray(values, float)
    if v.size <= n:
        return np.arange(v.size), v
    k = max(1, v.size // 200)
    kernel = np.ones(k) / k
    sm = np.convolve(v, kernel, mode="valid")
    return np.arange(sm.size) + k // 2, sm


def _hist_series(values, bins, label, colour=None, density=True):
    h, edges = np.histogram(values, bins=bins, density=density)
    s = {"x": np.repeat(edges, 2)[1:-1], "y": np.repeat(h, 2), "style": "line", "label": label}
    if colour:
        s["colour"] = colour
    return s


def write_report(run, path, command=None):
    from ..core.reporting.report import HtmlReport
    from ..core.reporting.svgplot import chart

    s, log, card = run.settings, run.log, run.card
    rep = HtmlReport("f-AnoGAN anomaly model: training report")
    rep.paragraph(card["description"])
    rep.table(["Item", "Value"], [
        ["Stack", card["training"].get("stack", "")],
        ["Elements", ", ".join(f"{e['name']} ({e['transform']}, mean {e['mean']:.3f}, sd {e['std']:.3f})"
                               for e in card["elements"])],
        ["Window", f"{s.window} x {s.window} cells of {card['cell_size']:g} m -> {s.size} x {s.size} model input"],
        ["Training / held-out windows", f"{len(run.train_scores):,} / {len(run.holdout_scores):,} "
                                        f"(held out: bands of rows, {100 * s.holdout:.0f} %)"],
        ["GAN", f"WGAN-GP, MLP {s.latent}-{s.hidden}-{s.hidden}-D, critic D-{s.hidden}-{s.hidden}-1, "
                f"{s.gan_steps} generator steps x {s.critic_steps} critic steps, batch {s.batch}, GP {s.penalty:g}"],
        ["Encoder", f"izi_f, {s.encoder_steps} steps, kappa {s.kappa:g}"],
        ["Time", f"GAN {log.gan_seconds:.0f} s, encoder {log.encoder_seconds:.0f} s, whole run {run.seconds:.0f} s "
                 f"on {s.threads} thread(s)"],
        ["Export", f"{run.onnx_path.name}, onnxruntime vs torch max |diff| {run.export_max_diff:.1e}"],
        ["Command", command or ""],
    ])
    rep.heading("Loss curves")
    x, y = _smooth(log.wasserstein)
    x2, y2 = _smooth(log.generator)
    x3, y3 = _smooth(log.penalty)
    ex, ey = _smooth(log.encoder)
    enc = [{"x": ex, "y": ey, "style": "line", "label": "encoder loss (training batches)"}]
    if log.encoder_holdout:
        hs, hv = zip(*log.encoder_holdout)
        enc.append({"x": hs, "y": hv, "style": "line", "label": "mean raw score, held-out windows"})
    rep.charts([
        chart([{"x": x, "y": y, "style": "line", "label": "Wasserstein estimate D(real) - D(fake)"}],
              title="Critic", xlabel="generator step", ylabel="value"),
        chart([{"x": x2, "y": y2, "style": "line", "label": "generator loss -D(G(z))"},
               {"x": x3, "y": y3, "style": "line", "label": "gradient penalty"}],
              title="Generator and gradient penalty", xlabel="generator step", ylabel="value"),
        chart(enc, title="Encoder (izi_f)", xlabel="encoder step", ylabel="loss", logy=True),
    ])
    rep.heading("Score histograms")
    hi = np.quantile(run.train_scores, 0.995)
    bins = np.linspace(0, hi, 60)
    series = [_hist_series(np.clip(run.train_scores, 0, hi), bins, "training windows")]
    if len(run.holdout_scores):
        series.append(_hist_series(np.clip(run.holdout_scores, 0, hi), bins, "held-out windows"))
    charts = [chart(series, title="Raw f-AnoGAN score (clipped at the 99.5th percentile)", xlabel="raw score",
                    ylabel="density")]
    if run.map_scores is not None:
        m = run.map_scores[np.isfinite(run.map_scores)]
        charts.append(chart([_hist_series(m, np.linspace(0, 1, 41), "stack cells", density=False)],
                            title="Exported 0..1 score over the whole stack", xlabel="score", ylabel="cells"))
    rep.charts(charts)
    rep.paragraph(
        "A held-out median close to the training median means the model learned the area, not the training "
        f"windows: ratio {card['validation']['metrics'].get('holdout_median_raw_score_ratio', float('nan')):.3f}.",
        css_class="note")
    rep.paragraph("No deposit or label was read by this run; evaluate the map against known deposits with "
                  "janja:evaluate (see the README).", css_class="note")
    rep.write(path)
    return path


def write_map(run, stack_path, path):
    from ..core.raster_grid import write_stack

    with wn.RasterStack(stack_path) as st:
        grid, crs = st.grid(), st.crs_wkt
    return write_stack(path, [run.map_scores], ["anomaly_score"], grid, crs, tags={"model": run.onnx_path.name})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m janja_plugin.training.anomaly", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="element stack GeoTIFF (janja:krige's layout)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--elements", default="", help="comma-separated band descriptions (default: all bands)")
    d = AnomalySettings()
    for key in ("window", "size", "n_windows", "gan_steps", "encoder_steps", "latent", "hidden", "batch", "seed",
                "threads"):
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=getattr(d, key))
    parser.add_argument("--kappa", type=float, default=d.kappa)
    parser.add_argument("--name", default=BUNDLED_NAME)
    parser.add_argument("--bundle", nargs="?", const="", metavar="NAME",
                        help=f"copy the model into {MODELS_DIR}, where janja:anomaly_score takes its default model "
                             "from; NAME must repeat --name")
    parser.add_argument("--no-bundle", action="store_true", help="the default: do not copy the model (kept for old "
                                                                  "command lines)")
    args = parser.parse_args(argv)
    if args.bundle is not None and args.bundle != args.name:  # refused before any training, never after
        print(f"error: --bundle copies the model into {MODELS_DIR}, replacing janja:anomaly_score's default model "
              f"when the names match; name the model to confirm it: --bundle {args.name} (the --name).",
              file=sys.stderr)
        return 2
    settings = AnomalySettings(
        window=args.window, size=args.size, n_windows=args.n_windows, gan_steps=args.gan_steps,
        encoder_steps=args.encoder_steps, latent=args.latent, hidden=args.hidden, batch=args.batch,
        seed=args.seed, threads=args.threads, kappa=args.kappa,
        elements=tuple(e.strip() for e in args.elements.split(",") if e.strip()),
    )
    out = Path(args.out)
    try:
        run = train(args.stack, out, settings, name=args.name)
    except JanjaInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    command = "python -m janja_plugin.training.anomaly " + " ".join(argv if argv is not None else sys.argv[1:])
    write_map(run, args.stack, out / f"{args.name}_score.tif")
    report = write_report(run, out / f"{args.name}_report.html", command=command)
    (out / f"{args.name}_log.json").write_text(json.dumps(
        {"seconds": run.seconds, "gan_seconds": run.log.gan_seconds, "encoder_seconds": run.log.encoder_seconds,
         "export_max_diff": run.export_max_diff, "settings": asdict(run.settings)}, indent=2, default=list))
    print(f"report: {report}")
    if args.bundle and not args.no_bundle:
        MODELS_DIR.mkdir(exist_ok=True)
        dst = MODELS_DIR / run.onnx_path.name
        if dst.exists():  # never replace the plugin's anomaly model without saying what it was
            try:
                old = json.loads(mc.card_path_for(dst).read_text())
                was = f"'{old.get('name')}' of {old.get('date')}: {old.get('training', {}).get('summary', '')[:160]}"
            except (OSError, ValueError, AttributeError):
                was = "(no readable card)"
            print(f"replaced {dst} (was {was})")
        for src in (run.onnx_path, mc.card_path_for(run.onnx_path)):
            shutil.copyfile(src, MODELS_DIR / src.name)
        print(f"bundled: {dst}" + (" (janja:anomaly_score's default model)" if run.onnx_path.name ==
                                   BUNDLED_NAME + ".onnx" else ""))
    print(f"done in {run.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
