"""Upsampler ablation: train each model yaml for N epochs over several seeds, report mean ± std of mAP.

Example (a real comparison wants a GPU, the full schedule and at least 3 seeds):
    python benchmarks/ablation.py --device 0 --epochs 100 --seeds 0 1 2 --imgsz 640 --batch 16 \
        --data ../shared/datasets/coco128/coco128.yaml
    python benchmarks/ablation.py --models yolo11n.yaml yolo11n-carafe.yaml --epochs 1 --seeds 0 --imgsz 128

Every run starts from scratch (the yaml, no pretrained weights) with the same data, schedule and seed list, so the
only difference between rows is the upsampler. ``--pretrained best.pt`` instead starts every row from the same
checkpoint: each model takes every weight whose name and shape match (all but the new upsampler's own parameters
when the checkpoint is a stock YOLO11 of the same scale), so a short CPU run fine-tunes a working detector instead
of learning from nothing. That favours the upsampler the checkpoint was trained with; say so when you report it.

mAP is what ``DetectionTrainer.train()`` returns: the final validation of best.pt. Plots are off; runs go to a
temporary folder unless ``--project`` keeps them. The spread over seeds tells whether a difference between two rows
is larger than run-to-run noise; with one seed std is 0.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco128" / "coco128.yaml"
MODELS = (
    "yolo11n.yaml",
    "yolo11n-bilinear.yaml",
    "yolo11n-carafe.yaml",
    "yolo11n-dysample.yaml",
    "yolo11n-dysample-pl.yaml",
    "yolo11n-dysample-lp-dyscope.yaml",
    "yolo11n-dysample-pl-dyscope.yaml",
)
KEYS = {"mAP50": "metrics/mAP50(B)", "mAP50-95": "metrics/mAP50-95(B)"}


def train_once(model, seed, args, project):
    """Train one (model, seed) pair and return its final metrics dict and the seconds it took."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    overrides = dict(model=model, data=str(args.data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                     device=args.device, workers=args.workers, seed=seed, deterministic=True, plots=False,
                     project=str(project), name=f"{Path(model).stem}-seed{seed}", exist_ok=True,
                     pretrained=args.pretrained or False, verbose=False)  # fmt: skip
    overrides.update(args.set)  # --set wins over the options above
    t0 = time.time()
    metrics = DetectionTrainer(overrides=overrides).train()
    return {k: float(metrics[v]) for k, v in KEYS.items()}, time.time() - t0


def summarise(model, runs):
    """Mean and sample standard deviation of each metric over the seeds of one model."""
    row = {"model": model, "seeds": [r["seed"] for r in runs], "runs": runs}
    for k in KEYS:
        values = [r[k] for r in runs]
        row[k] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return row


def run_all(args, project):
    """Train every model with every seed, seeds outermost so an interrupted run still covers all models."""
    runs = {m: [] for m in args.models}
    for seed in args.seeds:
        for model in args.models:
            metrics, seconds = train_once(model, seed, args, project)
            runs[model].append({"seed": seed, **metrics, "seconds": round(seconds, 1)})
    return [summarise(m, r) for m, r in runs.items()]


def print_table(rows, args):
    """Print mean ± std per model, plus the difference of the means from the first model."""
    start = f"from {args.pretrained}" if args.pretrained else "from scratch"
    print(f"\n{args.epochs} epochs {start}, imgsz {args.imgsz}, batch {args.batch}, seeds {args.seeds}")
    print(f"data {args.data}")
    print(f"{'model':<36}{'mAP50':>18}{'mAP50-95':>18}{'Δ mAP50-95 vs first':>22}")
    base = rows[0]["mAP50-95"]["mean"]
    for r in rows:
        a, b = r["mAP50"], r["mAP50-95"]
        print(f"{r['model']:<36}{a['mean']:>10.4f} ± {a['std']:.4f}{b['mean']:>10.4f} ± {b['std']:.4f}"
              f"{b['mean'] - base:>+22.4f}")  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model yamls, the first is the baseline")
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else "coco128.yaml")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="", help="cpu, or a CUDA index such as 0 ('' picks GPU 0 if any)")
    parser.add_argument("--pretrained", default="", help="start every model from this .pt (matching weights)")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="more training arguments for every run, as on the yolo CLI (lr0=0.001 warmup_epochs=0)",
    )
    parser.add_argument("--project", default="", help="keep the runs here instead of in a temporary folder")
    parser.add_argument("--json", default="", help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    args.set = parse_overrides(args.set)
    return args


def parse_overrides(pairs):
    """``key=value`` strings → dict, values read as the yolo CLI reads them; keys are checked by the trainer."""
    from ultralytics.cfg import parse_key_value_pair

    return dict(parse_key_value_pair(p) for p in pairs)


def main(argv=None):
    args = parse_args(argv)
    if args.project:
        rows = run_all(args, Path(args.project))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = run_all(args, Path(tmp))
    print_table(rows, args)
    result = {"epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch, "data": str(args.data),
              "device": args.device, "pretrained": args.pretrained, "set": args.set, "rows": rows}  # fmt: skip
    text = json.dumps(result)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
