"""Speed of this fork against upstream Ultralytics 8.4.190 with DySample grafted in: train, val and predict.

Example:
    python benchmarks/vs_upstream.py                                   # CPU, imgsz 320, a few minutes
    python benchmarks/vs_upstream.py --device 0 --imgsz 640 --batch 16 --iters 50 --rounds 3

Upstream is installed into a temporary folder (``pip install --no-deps --target <tmp>/up ultralytics==8.4.190``;
its requirements that this environment lacks go into ``<tmp>/deps``, also with ``--no-deps``), never into the
project environment: both packages are called ``ultralytics``. ``ultralytics.utils.graft`` then applies this fork's
DySample delta to that copy, exactly as a user of the well-known tutorial would.

Each side runs in its own subprocess (this fork with the environment as it is; upstream with
``PYTHONPATH=<tmp>/up:<tmp>/deps``, ``YOLO_OFFLINE=1`` and ``YOLO_CONFIG_DIR=<tmp>``) with the same model yaml,
data, image size, batch, workers, device and seed, and measures:

* train images/s over ``--iters`` full optimisation steps (data loading, forward, loss, backward, optimizer and
  EMA) after ``--warmup`` steps, the trainer's own dataloader and step code on both sides;
* val ms/image (preprocess, inference, loss, postprocess), the validator's own timing;
* predict ms/image on ``--predict-images`` images of the val split, the predictor's own timing, skipping the first.

Val and predict use the same weights on both sides (``--weights``: a state dict in ``.npz``, by default the
upstream-trained ``yolo11n-dysample`` fixture in ../shared) so that both post-process the same boxes. With
``--rounds`` > 1 the sides alternate and medians are reported. Ratios are fork / upstream for times and
fork / upstream for images/s, so > 1 means the fork is faster on throughput and slower on times.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

UPSTREAM = "ultralytics==8.4.190"
SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_DATA = SHARED / "datasets" / "coco128" / "coco128.yaml"
DEFAULT_WEIGHTS = SHARED / "fixtures" / "upstream" / "yolo11n-dysample-coco128-1epoch.state.npz"
REPO = Path(__file__).resolve().parents[1]
RESULT = "VS_UPSTREAM_RESULT "
IMG_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
ALIASES = {  # distributions that provide the same import as a requirement (cv2): installing both would shadow one
    "opencv-python": ("opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
}


# Installing upstream --------------------------------------------------------------------------------------------------
def pip_target(packages, target):
    """``pip install --no-deps --target`` so nothing in the project environment is touched or shadowed."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *packages]
    subprocess.run(cmd, check=True)


def _requirements(dist):
    """Names of a distribution's unconditional requirements whose environment markers hold here."""
    from packaging.requirements import Requirement

    names = []
    for spec in dist.requires or []:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def _installed(name, extra_paths):
    """True when ``name`` (or a variant providing the same module) is installed here or in one of ``extra_paths``."""
    for candidate in (name, *ALIASES.get(name.lower(), ())):
        try:
            metadata.distribution(candidate)
            return True
        except metadata.PackageNotFoundError:
            if any(True for _ in metadata.distributions(name=candidate, path=[str(p) for p in extra_paths])):
                return True
    return False


def install_upstream(tmp):
    """Install upstream and its missing requirements (by name, versions not checked) under ``tmp``; return paths."""
    up, deps = tmp / "up", tmp / "deps"
    if not (up / "ultralytics" / "nn" / "tasks.py").is_file():
        pip_target([UPSTREAM], up)
    for _ in range(10):  # follow requirements of what was just installed, breadth first
        dists = [*metadata.distributions(path=[str(up)]), *metadata.distributions(path=[str(deps)])]
        missing = sorted({n for d in dists for n in _requirements(d) if not _installed(n, (up, deps))})
        if not missing:
            break
        print(f"installing upstream requirements missing here into {deps}: {' '.join(missing)}")
        pip_target(missing, deps)
    return up, deps


def graft_upstream(up):
    """Apply this fork's DySample delta to the upstream copy (a no-op when already grafted)."""
    from ultralytics.utils.graft import graft

    print(graft(up / "ultralytics"))


# One side, in a subprocess ------------------------------------------------------------------------------------------
def side_env(side, tmp, up, deps):
    """Environment for a side: upstream gets its folders first on the path, offline mode and its own settings dir."""
    env = dict(os.environ)
    if side == "upstream":
        env.update(PYTHONPATH=os.pathsep.join([str(up), str(deps)]), YOLO_OFFLINE="1",
                   YOLO_CONFIG_DIR=str(tmp / "config"))  # fmt: skip
    else:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def run_side(side, cfg, tmp, up, deps):
    """Run this script as a worker for one side and return its result dict; print the log tail on failure."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps({**cfg, "side": side})]
    proc = subprocess.run(cmd, env=side_env(side, tmp, up, deps), cwd=tmp, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT)]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise RuntimeError(f"{side} worker failed with exit code {proc.returncode}")
    return json.loads(lines[-1][len(RESULT) :])


def _next_batch(trainer, it):
    """Next training batch, restarting the loader at the end of an epoch."""
    try:
        return next(it), it
    except StopIteration:
        it = iter(trainer.train_loader)
        return next(it), it


def measure_train(cfg, project):
    """Train images/s over fixed steps, with the installed ``ultralytics`` (this fork or upstream)."""
    import torch

    from ultralytics.models.yolo.detect import DetectionTrainer

    overrides = dict(model=cfg["model"], data=cfg["data"], imgsz=cfg["imgsz"], batch=cfg["batch"],
                     workers=cfg["workers"], device=cfg["device"], seed=0, epochs=1, plots=False,
                     project=str(project), name=f"train-{cfg['side']}", exist_ok=True, verbose=False)  # fmt: skip
    trainer = DetectionTrainer(overrides=overrides)
    trainer._setup_train()
    trainer.model.train()
    it, seen, t0 = iter(trainer.train_loader), 0, None
    for step in range(cfg["warmup"] + cfg["iters"]):
        batch, it = _next_batch(trainer, it)
        if step == cfg["warmup"]:
            _sync(trainer.device)
            t0 = time.perf_counter()
        batch = trainer.preprocess_batch(batch)
        with torch.autocast(trainer.device.type, enabled=bool(trainer.amp)):
            loss, _ = trainer.model(batch)
        trainer.scaler.scale(loss.sum()).backward()
        trainer.optimizer_step()
        seen += batch["img"].shape[0] if step >= cfg["warmup"] else 0
    _sync(trainer.device)
    return {"train_img_per_s": seen / (time.perf_counter() - t0), "workers": trainer.train_loader.num_workers}


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(cfg):
    """``YOLO(model yaml)`` with the shared weights loaded, so both sides predict the same boxes."""
    import numpy as np
    import torch

    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(cfg["model"])
    if cfg["weights"]:
        state = {k: torch.from_numpy(v) for k, v in np.load(cfg["weights"]).items()}
        model.model.load_state_dict(state)
    return model


def measure_val_predict(cfg, project):
    """Validator ms/image on the val split and predictor ms/image on the prepared image folder."""
    model = _model(cfg)
    common = dict(imgsz=cfg["imgsz"], device=cfg["device"], verbose=False)
    metrics = model.val(data=cfg["data"], batch=cfg["batch"], workers=cfg["workers"], plots=False,
                        project=str(project), name=f"val-{cfg['side']}", exist_ok=True, **common)  # fmt: skip
    results = model.predict(cfg["predict_source"], save=False, **common)
    timed = results[1:] or results  # the first image pays for lazy set-up
    keys = ("preprocess", "inference", "postprocess")
    predict = {k: statistics.fmean(r.speed[k] for r in timed) for k in keys}
    return {"val_ms": {k: float(v) for k, v in metrics.speed.items()}, "predict_ms": predict,
            "val_map50_95": float(metrics.box.map)}  # fmt: skip


def worker(cfg):
    """Entry point inside the subprocess: measure everything and print one result line."""
    import torch

    import ultralytics

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])

    with tempfile.TemporaryDirectory() as project:
        out = {"side": cfg["side"], "version": ultralytics.__version__, "package": str(Path(ultralytics.__file__)),
               "threads": torch.get_num_threads()}  # fmt: skip
        out |= measure_train(cfg, project)
        out |= measure_val_predict(cfg, project)
    print(RESULT + json.dumps(out), flush=True)


# Driver -------------------------------------------------------------------------------------------------------------
def predict_folder(data, n, tmp):
    """Copy the first ``n`` images of the dataset's val split into a folder both predictors read."""
    import yaml

    d = yaml.safe_load(Path(data).read_text())
    root = Path(d.get("path") or Path(data).parent)
    root = root if root.is_absolute() else Path(data).parent / root
    val = d["val"][0] if isinstance(d["val"], list) else d["val"]
    images = sorted(p for p in (root / val).rglob("*") if p.suffix.lower() in IMG_SUFFIXES)[:n]
    folder = tmp / "predict"
    folder.mkdir(exist_ok=True)
    for p in images:
        shutil.copy(p, folder / p.name)
    return str(folder)


def median_side(results):
    """Median of every number over rounds (nested one level for the ms dicts)."""
    out = dict(results[0])
    for k, v in results[0].items():
        if isinstance(v, dict):
            out[k] = {kk: statistics.median(r[k][kk] for r in results) for kk in v}
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = statistics.median(r[k] for r in results)
    return out


def print_report(fork, up, args):
    """Side-by-side table with fork / upstream ratios."""
    print(f"\n{args.model}, data {args.data}, imgsz {args.imgsz}, batch {args.batch}, workers {args.workers}, "
          f"device {args.device or 'auto'}, {args.iters} train steps after {args.warmup}, "
          f"rounds {args.rounds}")  # fmt: skip
    print(f"fork {fork['version']} ({fork['package']}); upstream {up['version']} ({up['package']})")
    print(f"train loader workers fork/upstream {fork['workers']}/{up['workers']}, "
          f"torch threads {fork['threads']}/{up['threads']}")  # fmt: skip
    print(f"\n{'metric':<30}{'fork':>12}{'upstream':>12}{'fork/upstream':>15}")
    rows = [("train images/s", fork["train_img_per_s"], up["train_img_per_s"])]
    rows += [(f"val ms/img {k}", fork["val_ms"][k], up["val_ms"][k]) for k in fork["val_ms"] if k in up["val_ms"]]
    rows += [(f"predict ms/img {k}", fork["predict_ms"][k], up["predict_ms"][k]) for k in fork["predict_ms"]]
    for name, a, b in rows:
        print(f"{name:<30}{a:>12.3f}{b:>12.3f}{(a / b if b else float('nan')):>15.3f}")
    print(f"{'val mAP50-95 (same weights)':<30}{fork['val_map50_95']:>12.4f}{up['val_map50_95']:>12.4f}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolo11n-dysample.yaml")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.exists() else "",
                        help="state-dict .npz for val/predict ('' keeps each side's random init)")  # fmt: skip
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=10, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    parser.add_argument("--workers", type=int, default=2, help="dataloader workers (0 on CPU, see equal_workers)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads in both workers (0: default)")
    parser.add_argument("--device", default="", help="cpu, or a CUDA index such as 0")
    parser.add_argument("--predict-images", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="alternate fork/upstream this many times")
    parser.add_argument("--workdir", default="", help="reuse this folder for the upstream install (kept)")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def compare(args, tmp):
    """Install and graft upstream under ``tmp``, run both sides ``--rounds`` times, return (fork, upstream)."""
    up, deps = install_upstream(tmp)
    graft_upstream(up)
    keys = ("model", "data", "weights", "imgsz", "batch", "iters", "warmup", "workers", "device", "threads")
    cfg = {k: getattr(args, k) for k in keys}
    cfg["predict_source"] = predict_folder(args.data, args.predict_images, tmp)
    runs = {"fork": [], "upstream": []}
    for r in range(args.rounds):
        for side in ("fork", "upstream") if r % 2 == 0 else ("upstream", "fork"):
            runs[side].append(run_side(side, cfg, tmp, up, deps))
    fork, upstream = median_side(runs["fork"]), median_side(runs["upstream"])
    if not upstream["package"].startswith(str(up)):
        raise RuntimeError(f"the upstream side imported {upstream['package']}, not the copy under {up}")
    return fork, upstream


def equal_workers(args):
    """Upstream forces 0 dataloader workers on CPU (train and val); give this fork the same so loading is equal."""
    import torch

    on_cpu = args.device.lower() in {"cpu", "mps"} or (not args.device and not torch.cuda.is_available())
    if on_cpu and args.workers:
        print(f"CPU run: workers {args.workers} -> 0 for both sides, as upstream forces 0 workers on CPU")
        args.workers = 0


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    equal_workers(args)
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        fork, upstream = compare(args, Path(args.workdir).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            fork, upstream = compare(args, Path(tmp).resolve())
    print_report(fork, upstream, args)
    print(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "worker"}, "fork": fork,
                      "upstream": upstream}))  # fmt: skip


if __name__ == "__main__":
    main()
