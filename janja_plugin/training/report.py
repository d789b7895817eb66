"""The training report: counts, folds, GAN curves and samples, head search, the study experiment, export."""

import html

import numpy as np

from ..core.reporting.report import HtmlReport
from ..core.reporting.svgplot import PALETTE, chart


def window_grid_svg(real, fake, channel=0, cell=6, gap=8):
    """Real (top row) and generated (bottom row) windows of one element as small heat maps."""
    rows = [("real", real), ("generated", fake)]
    n = max(len(real), len(fake), 1)
    w = real.shape[-1] if len(real) else fake.shape[-1]
    allv = np.concatenate([a[:, channel].ravel() for _, a in rows if len(a)])
    lo, hi = np.percentile(allv, [2, 98]) if allv.size else (0, 1)
    width = 80 + n * (w * cell + gap)
    height = 2 * (w * cell + gap) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for ri, (label, arr) in enumerate(rows):
        y0 = 5 + ri * (w * cell + gap)
        parts.append(f'<text x="2" y="{y0 + w * cell / 2}" font-size="11">{label}</text>')
        for k, win in enumerate(arr[:n]):
            x0 = 80 + k * (w * cell + gap)
            v = np.clip((win[channel] - lo) / max(hi - lo, 1e-9), 0, 1)
            for i in range(w):
                for j in range(w):
                    g = int(255 * v[i, j])
                    parts.append(f'<rect x="{x0 + j * cell}" y="{y0 + i * cell}" width="{cell}" height="{cell}" '
                                 f'fill="rgb({g},{int(g * 0.6)},{255 - g})"/>')
    parts.append("</svg>")
    return "".join(parts)


def write_training_report(path, cfg, summary, gans, stack, elements):
    r = HtmlReport(f"Training report: {cfg.name}")
    r.paragraph(f"Stack {cfg.stack} ({stack.shape[0]} x {stack.shape[1]} cells of {stack.cell:g} m), deposits "
                f"{cfg.deposits}. Run time {summary.get('seconds', float('nan')):.0f} s.")
    r.heading("Settings used, and why")
    used = summary.get("settings_used", {})
    spacing = summary.get("sample_spacing")
    r.paragraph("Sample spacing (median distance from each distinct sample location to the nearest other): "
                + (f"{spacing:g} m." if spacing else "unknown (no samples given).")
                + " Distances the config leaves out scale with the survey (README: training config keys).")
    r.table(["setting", "value", "why"],
            [[k, "—" if u["value"] is None else u["value"], u["why"]] for k, u in used.items()])
    r.heading("Dataset")
    r.table(["count", "value"], [[k, v] for k, v in summary["counts"].items()])
    r.paragraph(f"Spatial-block folds ({cfg.folds} folds, {cfg.block_size:g} m blocks): positives per fold "
                f"{summary['fold_positives']}, deposits per fold {summary.get('fold_deposits')}.")
    baselines = summary.get("baselines") or {}
    if baselines:
        r.heading("Baselines on this survey: the target element itself")
        r.paragraph("Computed on this run's own stack, samples and deposits, by the same methods as the learned "
                    "map's held-out figures; no other survey's numbers.")
        r.table(["baseline", "AUC", "SD", "how"],
                [[k, "n/a" if b["auc"] is None else b["auc"], "" if b["sd"] is None else b["sd"], b["how"]]
                 for k, b in baselines.items()])
    r.heading("GAN (WGAN-GP) on the first split's training positives")
    for gan in gans:
        steps = np.arange(len(gan.critic_loss))
        r.paragraph(f"Elements {', '.join(elements)}: {len(gan.critic_loss)} generator steps in {gan.seconds:.1f} s.")
        r.charts([chart([{"x": steps, "y": gan.critic_loss, "label": "critic loss", "style": "line"},
                         {"x": steps, "y": gan.generator_loss, "label": "generator loss", "style": "line"},
                         {"x": steps, "y": gan.wasserstein, "label": "Wasserstein estimate", "style": "line"}],
                        title="WGAN-GP losses", xlabel="generator step", ylabel="loss")])
        real = getattr(gan, "real_examples", None)
        if real is not None and len(real):
            r.parts.append(f"<p>{html.escape(elements[0])}, standardised: 8 real (top) and 8 generated (bottom) "
                           "positive windows.</p>" + window_grid_svg(real, gan.sample(8, seed=1)))
    r.heading("Head hyperparameters (K-fold CV over spatial blocks, pretrained trunk, GAN on)")
    for key, s in summary["subsets"].items():
        r.paragraph(f"{key}: best of the grid: {s['search'][0][0]}, CV AUC {s['cv_auc']:.3f} ± {s['cv_auc_sd']:.3f} "
                    "(the best of several grid points is optimistic; the experiment below uses fresh splits).")
        r.table(["rank", "head", "CV AUC", "SD"], [[i + 1, str(c), m, sd] for i, (c, m, sd) in enumerate(s["search"])])
    r.heading("Study experiment: element subsets, repeats with different spatial-block splits")
    means = summary["experiment_means"]
    c = summary["counts"]
    majority = c["negative_used"] / max(c["negative_used"] + c["positive"], 1)
    r.paragraph(f"Read accuracy against {majority:.3f}, the accuracy of always answering 'background' on these "
                "windows (positives are few): ROC-AUC and cross-entropy say more. The random split puts windows of "
                "one deposit on both sides and shows how much a random split flatters a model.")
    r.table(["subset", "pretrained", "GAN", "split", "repeats", "AUC", "SD", "accuracy", "cross-entropy"],
            [[m["subset"], m["pretrained"], m["gan"], m["split"], m["n"], m["auc"], m["auc_sd"], m["accuracy"],
              m["cross_entropy"]] for m in means])
    series = []
    for i, (pre, gan) in enumerate([(True, True), (True, False), (False, True), (False, False)]):
        pts = [m for m in means if m["pretrained"] == pre and m["gan"] == gan and m["split"] == "blocks"]
        if pts:
            series.append({"x": [len(m["subset"].split("+")) for m in pts], "y": [m["auc"] for m in pts],
                           "label": f"pretrained={pre}, GAN={gan}", "style": "points",
                           "colour": PALETTE[i % len(PALETTE)]})
    if series:
        r.charts([chart(series, title="Mean validation AUC by number of elements (cf. the study's Fig. 10)",
                        xlabel="elements", ylabel="ROC-AUC")])
    with_curves = [row for row in summary["experiment"] if "curves" in row]
    best = max(((row["pretrained"], row["gan"]) for row in with_curves), default=None)
    curves = [row for row in with_curves if (row["pretrained"], row["gan"]) == best]
    svgs = []
    for row in curves:
        c = row["curves"]
        ep = np.arange(1, len(c["train_loss"]) + 1)
        svgs.append(chart([{"x": ep, "y": c["train_loss"], "label": "train loss", "style": "line"},
                           {"x": ep, "y": c["val_loss"], "label": "validation loss", "style": "line"},
                           {"x": ep, "y": c["train_acc"], "label": "train accuracy", "style": "line"},
                           {"x": ep, "y": c["val_acc"], "label": "validation accuracy", "style": "line"}],
                          title=f"Training curves, {row['subset']} (repeat 1, pretrained={row['pretrained']}, "
                                f"GAN={row['gan']}; cf. Fig. 11)", xlabel="epoch"))
    if svgs:
        r.charts(svgs)
    r.heading("Bundled model")
    r.paragraph(f"Subset {summary['bundled_subset']}.")
    if "protocol" in summary:
        p = summary["protocol"]
        r.paragraph(f"AUC by the sample protocol, out-of-fold over spatial blocks: {p['auc_mean']:.3f} ± "
                    f"{p['auc_sd']:.3f} ({p['n_deposits']} deposits, {p['n_samples']} samples, negatives at least "
                    f"{p.get('min_distance_km', cfg.protocol_min_distance_km):g} km from every deposit).")
    verdict = summary.get("verdict")
    if verdict:
        r.paragraph(verdict.strip(), css_class="note")
    r.table(["export", "value"], [[k, v] for k, v in summary.get("export", {}).items()])
    r.write(path)
