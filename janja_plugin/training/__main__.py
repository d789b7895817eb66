"""Offline training CLI (torch; never imported by the plugin).

    python -m janja_plugin.training check --config janja_plugin/training/configs/wa_au.json   # seconds
    python -m janja_plugin.training train --config janja_plugin/training/configs/wa_au.json --out out/train_wa
    python -m janja_plugin.training train --config ... --out ... --bundle wa_au_inception   # also copy into models/
    python -m janja_plugin.training smoke --out out/train_smoke
    python -m janja_plugin.training bundle out/train_wa/wa_au_inception.onnx   # copy into models/
"""

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import JanjaInputError

REPO = Path(__file__).resolve().parents[2]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m janja_plugin.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train, validate and export a classifier from a JSON config")
    t.add_argument("--config", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--repeats", type=int, help="override the config's repeats")
    t.add_argument("--grid", choices=["default", "full"], help="head grid: the small default or the study's full grid")
    t.add_argument("--bundle", nargs="?", const="", metavar="NAME",
                   help="copy the exported model into models/ (where the plugin finds its default model); NAME must "
                        "be the config's model name, so that a bundle is always asked for by name")
    c = sub.add_parser("check", help="check a config against its survey in seconds (train runs it first too)")
    c.add_argument("--config", required=True)
    c.add_argument("--repeats", type=int, help="override the config's repeats")
    s = sub.add_parser("smoke", help="the whole pipeline on a tiny synthetic stack with planted deposits")
    s.add_argument("--out", required=True)
    b = sub.add_parser("bundle", help="copy an exported model and its card into models/")
    b.add_argument("onnx")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            from .baselines import compute_baselines, describe
            from .check import check
            from .config import Config

            cfg = Config.from_json(args.config)
            if args.repeats is not None:
                cfg.repeats = args.repeats
            result = check(cfg)
            print("\n".join(result.lines + describe(compute_baselines(result.cfg, result))))
            print("check: the config fits the survey")
        elif args.command == "train":
            from .pipeline import Config, run

            cfg = Config.from_json(args.config)
            if args.repeats is not None:
                cfg.repeats = args.repeats
            if args.grid:
                cfg.grid = args.grid
            check_bundle_request(args.bundle, cfg.name)
            summary = run(cfg, args.out)
            if args.bundle:
                from .export import bundle

                copied, lines = bundle(summary["export"]["onnx"], REPO / "models")
                print("bundled:", *copied)
                print("\n".join(lines))
        elif args.command == "smoke":
            from .smoke import run_smoke

            result = run_smoke(args.out)
            print(json.dumps(result, indent=1))
            if result["planted_auc"] <= 0.9:
                print(f"smoke: the planted deposits rank with AUC {result['planted_auc']:.3f} <= 0.9", file=sys.stderr)
                return 1
        elif args.command == "bundle":
            from .export import bundle

            copied, lines = bundle(args.onnx, REPO / "models")
            print("bundled:", *copied)
            print("\n".join(lines))
    except JanjaInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def check_bundle_request(requested, name):
    """--bundle replaces files the plugin loads by default: refused unless the model is named, before any work."""
    if requested is None:
        return
    if requested == "":
        raise JanjaInputError(
            f"--bundle copies the model into models/, where janja:prospectivity and janja:workflow take their default "
            f"classifier from; name the model to confirm it: --bundle {name} (the config's 'name').")
    if requested != name:
        raise JanjaInputError(
            f"--bundle {requested} does not name the model this config trains ('{name}', the config's 'name'): "
            f"use --bundle {name}, or leave --bundle out and copy a model later with the 'bundle' command.")


if __name__ == "__main__":
    sys.exit(main())
