"""Offline training CLI (torch; never imported by the plugin).

    python -m janja_plugin.training train --config janja_plugin/training/configs/wa_au.json --out out/train_wa
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
    t.add_argument("--bundle", action="store_true", help="copy the exported model into models/")
    s = sub.add_parser("smoke", help="the whole pipeline on a tiny synthetic stack with planted deposits")
    s.add_argument("--out", required=True)
    b = sub.add_parser("bundle", help="copy an exported model and its card into models/")
    b.add_argument("onnx")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            from .pipeline import Config, check_config, run

            cfg = Config.from_json(args.config)
            if args.repeats is not None:
                cfg.repeats = args.repeats
            if args.grid:
                cfg.grid = args.grid
            check_config(cfg)
            summary = run(cfg, args.out)
            if args.bundle:
                from .export import bundle

                print("bundled:", *bundle(summary["export"]["onnx"], REPO / "models"))
        elif args.command == "smoke":
            from .smoke import run_smoke

            result = run_smoke(args.out)
            print(json.dumps(result, indent=1))
            if result["planted_auc"] <= 0.9:
                print(f"smoke: the planted deposits rank with AUC {result['planted_auc']:.3f} <= 0.9", file=sys.stderr)
                return 1
        elif args.command == "bundle":
            from .export import bundle

            print("bundled:", *bundle(args.onnx, REPO / "models"))
    except JanjaInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
