"""The validator end to end: a generated dataset with hand-checkable answers, and parity with upstream on BCCD."""

import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import require_shared
from ultralytics.data import build_dataloader, build_yolo_dataset, check_det_dataset
from ultralytics.engine.validator import BaseValidator
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.checkpoint import load_checkpoint
from ultralytics.utils.files import increment_path

METRIC_KEYS = ["metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "fitness"]
BGR = {0: (0, 0, 255), 1: (0, 255, 0)}  # class 0 is drawn pure red, class 1 pure green
BOXES = [  # per image: (class, x1, y1, x2, y2) in pixels of a 128x96 image; at most one box per class
    [(0, 10, 12, 40, 50), (1, 70, 30, 110, 80)],
    [(0, 50, 20, 90, 60)],
    [(1, 5, 5, 35, 25), (0, 80, 60, 120, 90)],
    [(1, 60, 10, 100, 40)],
]


def _write_dataset(root, boxes=BOXES, w=128, h=96):
    """Black PNGs with filled rectangles and their YOLO labels; returns the dataset yaml path."""
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    for i, objects in enumerate(boxes):
        img = np.zeros((h, w, 3), dtype=np.uint8)
        rows = []
        for c, x1, y1, x2, y2 in objects:
            cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), BGR[c], -1)  # covers pixels x1..x2-1
            rows.append(f"{c} {(x1 + x2) / 2 / w:.8f} {(y1 + y2) / 2 / h:.8f} {(x2 - x1) / w:.8f} {(y2 - y1) / h:.8f}")
        cv2.imwrite(str(root / "images" / "val" / f"im{i}.png"), img)
        (root / "labels" / "val" / f"im{i}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/val\nval: images/val\nnames:\n  0: red\n  1: green\n")
    return yaml


class RectangleFinder(nn.Module):
    """A stand-in detector that reports each drawn rectangle exactly (plus ``shift`` pixels in x), score 0.9.

    It reads the letterboxed input itself, so whatever the resize, padding and batching, its boxes are the truth.
    """

    def __init__(self, shift=0.0):
        super().__init__()
        self.register_buffer("stride", torch.tensor([8.0, 16.0, 32.0]))
        self.names = {0: "red", 1: "green"}
        self.shift = shift

    def forward(self, img):
        out = torch.zeros(img.shape[0], 6, 2, device=img.device)  # (B, 4 + nc, anchors)
        for b, im in enumerate(img):
            for c in (0, 1):
                mask = (im[c] > 0.5) & (im[1 - c] < 0.5) & (im[2] < 0.5)  # RGB: red or green pixels only
                if mask.any():
                    ys, xs = torch.where(mask)
                    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
                    out[b, :4, c] = torch.stack(((x1 + x2) / 2 + self.shift, (y1 + y2) / 2, x2 - x1, y2 - y1))
                    out[b, 4 + c, c] = 0.9
        return out


def _args(tmp_path, data, **kw):
    return {"data": str(data), "imgsz": 128, "batch": 2, "project": str(tmp_path / "runs"), "name": "val",
            "plots": False, **kw}  # fmt: skip


@pytest.fixture
def dataset(tmp_path):
    return _write_dataset(tmp_path / "data")


# ------------------------------------------------------------------------------------------------ no shared data
def test_increment_path(tmp_path):
    assert increment_path(tmp_path / "val") == tmp_path / "val"  # free: used as is
    (tmp_path / "val").mkdir()
    assert increment_path(tmp_path / "val") == tmp_path / "val2"
    assert increment_path(tmp_path / "val", exist_ok=True) == tmp_path / "val"
    (tmp_path / "val2").mkdir()
    assert increment_path(tmp_path / "val", mkdir=True) == tmp_path / "val3" and (tmp_path / "val3").is_dir()
    (tmp_path / "results.csv").write_text("")
    assert increment_path(tmp_path / "results.csv", sep="_") == tmp_path / "results_2.csv"


def test_exact_predictions_score_perfectly(tmp_path, dataset, ulogs):
    validator = DetectionValidator(args=_args(tmp_path, dataset))
    stats = validator(model=RectangleFinder())
    assert list(stats) == METRIC_KEYS
    assert stats["metrics/precision(B)"] == pytest.approx(1.0)
    assert stats["metrics/recall(B)"] == pytest.approx(1.0)
    # COCO 101-point interpolation ends on the precision-0 sentinel at recall 1: a perfect AP is 0.995 upstream
    assert stats["metrics/mAP50(B)"] == pytest.approx(0.995)
    assert stats["metrics/mAP50-95(B)"] == pytest.approx(0.995)
    assert stats["fitness"] == stats["metrics/mAP50-95(B)"]
    assert validator.save_dir == tmp_path / "runs" / "val"
    assert any(line.split()[:4] == ["all", "4", "6", "1"] for line in ulogs)  # images, instances, P
    assert any(line.split()[:3] == ["red", "3", "3"] for line in ulogs)  # per-class rows (verbose, nc > 1)
    assert any(line.startswith("Speed: ") and line.endswith("ms postprocess per image") for line in ulogs)


def test_shifted_predictions_score_zero(tmp_path, dataset):
    stats = DetectionValidator(args=_args(tmp_path, dataset))(model=RectangleFinder(shift=60.0))
    assert stats["metrics/mAP50(B)"] == 0 and stats["metrics/mAP50-95(B)"] == 0
    assert stats["metrics/precision(B)"] == 0 and stats["metrics/recall(B)"] == 0


def test_slightly_shifted_predictions_fail_the_strict_thresholds(tmp_path, dataset):
    """A 4-pixel x shift of a w-wide box gives IoU (w - 4) / (w + 4): 0.76 for w=30, 0.82 for w=40.

    So every box is a true positive at IoU 0.50-0.75 (AP 0.995) and none is at 0.85-0.95 (AP 0).
    """
    validator = DetectionValidator(args=_args(tmp_path, dataset))
    validator(model=RectangleFinder(shift=4.0))
    ap = validator.metrics.box.all_ap  # (classes, 10 thresholds)
    assert ap[:, :6] == pytest.approx(np.full((2, 6), 0.995))
    assert (ap[:, 7:] == 0).all()


def test_real_model_plots_and_run_numbering(tmp_path, dataset):
    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = DetectionValidator(args=_args(tmp_path, dataset, imgsz=64, plots=True))
    stats = first(model=model)
    assert list(stats) == METRIC_KEYS and all(isinstance(v, float) for v in stats.values())
    assert not model.is_fused() and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    written = {p.name for p in first.save_dir.iterdir()}
    expected = {"confusion_matrix.png", "confusion_matrix_normalized.png"}
    expected |= {f"Box{k}_curve.png" for k in ("PR", "F1", "P", "R")}
    expected |= {f"val_batch{i}_{kind}.jpg" for i in (0, 1) for kind in ("labels", "pred")}  # 4 images, batch 2
    assert expected <= written
    assert "val_batch2_labels.jpg" not in written

    second = DetectionValidator(args=_args(tmp_path, dataset))
    second(model=RectangleFinder())
    assert (first.save_dir, second.save_dir) == (tmp_path / "runs" / "val", tmp_path / "runs" / "val2")
    assert not any(second.save_dir.glob("*.png"))  # plots=False


def test_no_labels_warns(tmp_path, ulogs):
    data = _write_dataset(tmp_path / "empty", boxes=[[], []])
    stats = DetectionValidator(args=_args(tmp_path, data))(model=RectangleFinder())
    assert list(stats) == METRIC_KEYS and stats["metrics/mAP50(B)"] == 0
    assert any("no labels found in detect set" in line for line in ulogs)


class _Trainer:
    """The few trainer attributes the validator reads."""

    def __init__(self, model, data):
        self.device, self.data, self.model, self.ema, self.amp = torch.device("cpu"), data, model, None, False
        self.epoch, self.epochs, self.stopper = 0, 1, SimpleNamespace(possible_stop=False)
        self.loss_names = ("box_loss", "cls_loss", "dfl_loss")

    def label_loss_items(self, loss_items=None, prefix="train"):
        keys = [f"{prefix}/{x}" for x in self.loss_names]
        return keys if loss_items is None else dict(zip(keys, [round(float(x), 5) for x in loss_items]))


def test_training_mode_adds_val_losses(tmp_path, dataset):
    data = check_det_dataset(str(dataset))
    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    model.args = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)
    args = _args(tmp_path, dataset, imgsz=64)
    loader = build_dataloader(
        build_yolo_dataset(SimpleNamespace(**args), data["val"], 2, data, mode="val", rect=True), 2, 0, shuffle=False
    )
    validator = DetectionValidator(dataloader=loader, save_dir=tmp_path / "train", args=args)
    results = validator(trainer=_Trainer(model, data))
    assert list(results) == [*METRIC_KEYS, "val/box_loss", "val/cls_loss", "val/dfl_loss"]
    assert all(isinstance(v, float) and v == round(v, 5) for v in results.values())
    assert results["val/cls_loss"] > 0
    assert model.training  # left in the mode it came in
    assert not model.is_fused()


def test_base_validator_needs_task_hooks(tmp_path):
    with pytest.raises(NotImplementedError):
        BaseValidator(save_dir=tmp_path).get_dataloader("images", 2)


# ---------------------------------------------------------------------------------------------- BCCD (shared/)
def _bccd_model(name):
    """The upstream-trained BCCD checkpoint as this fork's DetectionModel (architecture from its own yaml)."""
    ckpt = load_checkpoint(require_shared("fixtures", "upstream", f"{name}.pt"))
    model = DetectionModel(ckpt["yaml"], nc=3, verbose=False)
    model.load_state_dict(ckpt["ema_state"] or ckpt["model_state"])
    model.names = ckpt["names"]
    return model


def _validate_bccd(tmp_path, data, name):
    validator = DetectionValidator(
        args=dict(data=str(data), imgsz=640, batch=16, conf=0.001, iou=0.7, plots=False, project=str(tmp_path))
    )
    stats = validator(model=_bccd_model(name))
    return [stats[k] for k in METRIC_KEYS[:4]], validator.metrics.box.ap.tolist()


def test_bccd_subset_matches_upstream(tmp_path):
    """8 BCCD test images; expected values from upstream 8.4.190's ``YOLO(...).val`` on the same 8 images (CPU)."""
    src = require_shared("datasets", "bccd-test")
    for sub in ("images", "labels"):
        (tmp_path / "sub" / sub / "test").mkdir(parents=True)
    for img in sorted((src / "images" / "test").glob("*.jpg"))[:8]:
        shutil.copy(img, tmp_path / "sub" / "images" / "test")
        shutil.copy(src / "labels" / "test" / f"{img.stem}.txt", tmp_path / "sub" / "labels" / "test")
    data = tmp_path / "sub" / "sub.yaml"
    data.write_text("train: images/test\nval: images/test\nnames:\n  0: RBC\n  1: WBC\n  2: Platelets\n")
    mean, per_class = _validate_bccd(tmp_path, data, "bccd-yolo11n")
    assert mean == pytest.approx([0.776907, 0.639222, 0.709299, 0.409390], abs=1e-3)
    assert per_class == pytest.approx([0.338086, 0.675000, 0.215084], abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, mean, per_class",
    [  # upstream's table in shared/README.md: P, R, mAP50, mAP50-95; mAP50-95 of RBC, WBC, Platelets
        ("bccd-yolo11n", [0.7719, 0.7073, 0.7371, 0.4121], [0.4170, 0.6067, 0.2128]),
        ("bccd-yolo11n-dysample", [0.7705, 0.7457, 0.7756, 0.4512], [0.4390, 0.6469, 0.2676]),
    ],
)
def test_bccd_parity_with_upstream_table(tmp_path, name, mean, per_class):
    data = require_shared("datasets", "bccd-test", "bccd-test.yaml")
    got_mean, got_per_class = _validate_bccd(tmp_path, data, name)
    assert got_mean == pytest.approx(mean, abs=0.002)
    assert got_per_class == pytest.approx(per_class, abs=0.002)
