"""End-to-end training on tiny generated data: outputs, checkpoints, resume, bad data, NaN guard, CLI, DDP."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import make_dataset, require_shared
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer

FAST = dict(epochs=1, imgsz=64, batch=4, workers=0, plots=False, val=True, exist_ok=False)


@pytest.fixture
def data(tmp_path):
    return make_dataset(tmp_path / "data")


def _rows(csv_file):
    with open(csv_file) as f:
        return list(csv.DictReader(f))


def test_train_writes_upstream_outputs(data, tmp_path):
    project = tmp_path / "runs"
    model = YOLO("yolo11n-dysample.yaml")
    metrics = model.train(data=str(data), project=str(project), name="train", **{**FAST, "plots": True})
    run = project / "train"
    for name in ("results.csv", "results.png", "args.yaml", "weights/last.pt", "weights/best.pt", "train_batch0.jpg"):
        assert (run / name).is_file(), name
    header = list(_rows(run / "results.csv")[0])
    assert header[:5] == ["epoch", "time", "train/box_loss", "train/cls_loss", "train/dfl_loss"]
    assert "metrics/mAP50-95(B)" in header and "lr/pg2" in header
    assert set(metrics) >= {"metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)"}
    ckpt = torch.load(run / "weights" / "last.pt", weights_only=True)  # plain data only: safe to load
    for key in ("model", "ema", "epoch", "optimizer", "train_args", "train_metrics", "date", "version"):
        assert key in ckpt
    assert "model.11.offset.weight" in ckpt["model"]
    assert model.ckpt_path.endswith("best.pt")  # the YOLO object now holds the trained weights
    assert model.val(plots=False, project=str(project)).box.map >= 0  # README: model.val() reuses the training data
    YOLO("yolo11n.yaml").train(data=str(data), project=str(project), name="train", **FAST)
    assert (project / "train2" / "weights" / "last.pt").is_file()  # runs never overwrite each other


def test_unknown_and_mistyped_keys_are_refused(data):
    with pytest.raises(SyntaxError, match="'epoch' is not a valid YOLO argument.*epochs"):
        YOLO("yolo11n.yaml").train(data=str(data), epoch=3)
    with pytest.raises((TypeError, ValueError), match="epochs"):
        YOLO("yolo11n.yaml").train(data=str(data), epochs="many")


class _StopAfterFirstEpoch(DetectionTrainer):
    def _end_epoch(self, epoch):
        super()._end_epoch(epoch)
        raise KeyboardInterrupt("simulated kill after epoch 1")


def _losses(run, epoch):
    row = _rows(run / "results.csv")[epoch - 1]
    return [float(row[k]) for k in ("train/box_loss", "train/cls_loss", "train/dfl_loss")]


def test_resume_matches_uninterrupted_run(data, tmp_path):
    args = dict(model="yolo11n.yaml", data=str(data), epochs=2, imgsz=64, batch=4, workers=0, plots=False,
                seed=3, deterministic=True, close_mosaic=0, project=str(tmp_path / "runs"))  # fmt: skip
    full = DetectionTrainer(overrides={**args, "name": "full"})
    full.train()
    with pytest.raises(KeyboardInterrupt):
        _StopAfterFirstEpoch(overrides={**args, "name": "cut"}).train()
    cut = tmp_path / "runs" / "cut"
    assert len(_rows(cut / "results.csv")) == 1
    YOLO(str(cut / "weights" / "last.pt")).train(resume=True)
    assert len(_rows(cut / "results.csv")) == 2
    assert _losses(cut, 1) == _losses(full.save_dir, 1)
    assert _losses(cut, 2) == pytest.approx(_losses(full.save_dir, 2), rel=1e-5)


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume needs the last.pt"):
        DetectionTrainer(overrides={"resume": True, "model": str(tmp_path / "nothing.pt")})


def test_bad_data_trains_to_the_end_with_one_warning_per_file(data, ulogs):
    root = data.parent
    train = root / "images" / "train"
    (train / "im0.jpg").write_bytes((train / "im0.jpg").read_bytes()[:200])  # truncated JPEG
    import cv2
    import numpy as np

    cv2.imwrite(str(train / "png_inside.png"), np.full((80, 96, 3), 60, np.uint8))
    os.replace(train / "png_inside.png", train / "png_inside.jpg")  # a PNG renamed .jpg
    (root / "labels" / "train" / "png_inside.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "labels" / "train" / "im1.txt").write_text("")  # empty label file: a background image
    (root / "labels" / "train" / "im2.txt").write_text("0 0.5 0.5 0.2\n")  # 4 columns
    (root / "labels" / "train" / "im3.txt").write_text("7 0.5 0.5 0.2 0.2\n")  # class id >= nc
    (root / "labels" / "train" / "im4.txt").write_text("1 -0.5 0.5 0.2 0.2\n")  # negative coordinate
    trainer = DetectionTrainer(overrides={"model": "yolo11n.yaml", "data": str(data), **FAST, "project": str(root)})
    trainer.train()
    assert trainer.last.is_file() and len(_rows(trainer.csv)) == 1
    warnings = [m for m in ulogs if "im" in m and ("WARNING" in m or "corrupt" in m.lower() or "ignor" in m.lower())]
    for bad in ("im0.jpg", "im2.jpg", "im3.jpg", "im4.jpg"):
        assert sum(bad in m for m in warnings) == 1, (bad, warnings)
    assert not any("png_inside" in m for m in warnings)


def test_nan_loss_batches_are_skipped_and_epoch_recovered(data, tmp_path, ulogs):
    trainer = DetectionTrainer(overrides={"model": "yolo11n.yaml", "data": str(data), **FAST, "epochs": 2,
                                          "project": str(tmp_path / "runs")})  # fmt: skip
    calls = {"n": 0}
    original = trainer.preprocess_batch

    def poisoned(batch):
        batch = original(batch)
        calls["n"] += 1
        if calls["n"] <= 2:  # the first epoch's two batches give NaN everywhere
            batch["img"] = batch["img"] * float("nan")
        return batch

    trainer.preprocess_batch = poisoned
    trainer.train()
    assert trainer.nan_recoveries == 1
    assert any("non-finite loss" in m for m in ulogs)
    rows = _rows(trainer.csv)
    assert len(rows) == 2 and all(float(r["train/box_loss"]) == float(r["train/box_loss"]) for r in rows)
    ckpt = torch.load(trainer.last, weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_cli_train_and_val(data, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "ultralytics", "train", "model=yolo11n-dysample.yaml", f"data={data}", "epochs=1",
           "imgsz=64", "batch=4", "workers=0", "plots=False"]  # fmt: skip
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    best = tmp_path / "runs" / "detect" / "train" / "weights" / "best.pt"
    assert best.is_file()
    cmd = [sys.executable, "-m", "ultralytics", "val", f"model={best}", f"data={data}", "imgsz=64"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout + out.stderr  # tqdm writes the table header to stderr, the rows go to stdout
    assert " all " in text and "mAP50-95" in text


DDP_WORKER = Path(__file__).with_name("ddp_worker.py")


def test_ddp_two_cpu_ranks_agree_after_a_step(data, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    out_file = tmp_path / "ranks.txt"
    from ultralytics.engine.ddp import free_port

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(DDP_WORKER), str(data), str(tmp_path), str(out_file)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out_file.read_text().split()
    assert len(lines) == 2
    before = [line.split(":") for line in lines]
    assert before[0][1] == before[1][1]  # identical weights on both ranks after an optimizer step
    assert before[0][2] != before[0][1]  # ...and the step changed them


@pytest.mark.slow
def test_overfits_a_few_coco128_images():
    """From scratch, a handful of real images learned to mAP50 >= 0.5 (train and val on the same images)."""
    import shutil
    import tempfile

    import yaml

    coco = require_shared("datasets", "coco128")
    root = Path(tempfile.mkdtemp())
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for stem in ("000000000009", "000000000025", "000000000030", "000000000034"):
        for k in range(4):  # more steps per epoch: BatchNorm running statistics need ~100+ steps to settle
            shutil.copy(coco / "images" / "train2017" / f"{stem}.jpg", root / "images" / f"{stem}_{k}.jpg")
            shutil.copy(coco / "labels" / "train2017" / f"{stem}.txt", root / "labels" / f"{stem}_{k}.txt")
    names = yaml.safe_load((coco / "coco128.yaml").read_text())["names"]
    (root / "d.yaml").write_text(
        yaml.safe_dump({"path": str(root), "train": "images", "val": "images", "names": names})
    )
    metrics = YOLO("yolo11n-dysample.yaml").train(
        data=str(root / "d.yaml"), epochs=50, imgsz=160, batch=4, nbs=4, workers=0, mosaic=0.0, scale=0.0,
        translate=0.0, lr0=0.003, optimizer="AdamW", warmup_epochs=0, close_mosaic=0, val=False, plots=False,
        project=str(root / "runs"),
    )  # fmt: skip
    assert metrics["metrics/mAP50(B)"] >= 0.5
