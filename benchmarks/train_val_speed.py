"""Train images/s and val ms/image for one model on one dataset, on this machine (numbers for PR notes).

Example:
    python benchmarks/train_val_speed.py --model yolo11n-dysample.yaml \
        --data ../shared/datasets/coco128/coco128.yaml --imgsz 320 --batch 16 --iters 10

Training throughput is measured over full optimisation steps (data loading, forward, loss, backward, optimizer
and EMA), after ``--warmup`` steps; validation speed is the validator's own per-image timing.
"""

import argparse
import json
import tempfile
import time

import torch

from ultralytics.models.yolo.detect import DetectionTrainer


def measure(model, data, imgsz, batch, iters, warmup, workers, device):
    """Return a dict with train images/s and the validator's ms/image split."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = DetectionTrainer(
            overrides=dict(model=model, data=data, imgsz=imgsz, batch=batch, workers=workers, device=device,
                           epochs=1, plots=False, project=tmp, name="bench", verbose=False)
        )  # fmt: skip
        trainer._setup_train()
        trainer.nw = -1  # no warm-up schedule: measure steady-state steps
        trainer.model.train()
        loader = iter(trainer.train_loader)
        seen, t0 = 0, None
        for step in range(warmup + iters):
            try:
                data_batch = next(loader)
            except StopIteration:
                loader = iter(trainer.train_loader)
                data_batch = next(loader)
            if step == warmup:
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            data_batch = trainer.preprocess_batch(data_batch)
            with torch.autocast(trainer.device.type, enabled=trainer.amp):
                loss, _ = trainer.model(data_batch)
            trainer.scaler.scale(loss.sum()).backward()
            trainer.optimizer_step()
            if step >= warmup:
                seen += data_batch["img"].shape[0]
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        train_ips = seen / (time.perf_counter() - t0)
        trainer.validator(trainer)
        speed = trainer.validator.speed
    return {"model": model, "imgsz": imgsz, "batch": batch, "train_img_per_s": round(train_ips, 2),
            "val_ms_per_img": {k: round(v, 2) for k, v in speed.items()}}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["yolo11n.yaml", "yolo11n-dysample.yaml"])
    parser.add_argument("--data", default="coco128.yaml")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="")
    args = parser.parse_args()
    rows = [measure(m, args.data, args.imgsz, args.batch, args.iters, args.warmup, args.workers, args.device)
            for m in args.model]  # fmt: skip
    print(f"\n{'model':<28}{'train img/s':>12}{'val ms/img (pre/inf/loss/post)':>36}")
    for r in rows:
        v = r["val_ms_per_img"]
        split = "/".join(f"{v.get(k, 0):.1f}" for k in ("preprocess", "inference", "loss", "postprocess"))
        print(f"{r['model']:<28}{r['train_img_per_s']:>12.2f}{split:>36}")
    if len(rows) > 1:
        base = rows[0]["train_img_per_s"]
        for r in rows[1:]:
            print(f"train speed ratio {r['model']} / {rows[0]['model']}: {r['train_img_per_s'] / base:.3f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
