"""Interop with upstream Ultralytics: weight transfer, tutorial checkpoints, safe refusal, exported-model predict."""

import os
import shutil

import pytest
import torch

from tests.conftest import make_dataset, require_shared
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.checkpoint import UnsafeCheckpointError, load_checkpoint


def test_stock_checkpoint_transfers_everything_but_dysample(ulogs):
    stock = require_shared("fixtures", "upstream", "yolo11n-coco128-1epoch.pt")
    model = YOLO("yolo11n-dysample.yaml")
    model.load(stock)
    assert "Transferred 499/505 items from pretrained weights" in ulogs
    source = load_checkpoint(stock)["model_state"]
    own = model.model.state_dict()
    missing = sorted(set(own) - set(source))
    assert missing == [f"model.{i}.{n}" for i in (11, 14) for n in ("init_pos", "offset.bias", "offset.weight")]
    assert all(torch.equal(own[k].float(), source[k].float()) for k in own if k in source)


def test_train_with_pretrained_upstream_weights(tmp_path, ulogs):
    stock = require_shared("fixtures", "upstream", "yolo11n-coco128-1epoch.pt")
    data = make_dataset(tmp_path / "data", nc=80)
    trainer = DetectionTrainer(overrides=dict(model="yolo11n-dysample.yaml", data=str(data), pretrained=str(stock),
                                              epochs=1, imgsz=64, batch=4, workers=0, plots=False, val=False,
                                              project=str(tmp_path / "runs")))  # fmt: skip
    trainer.train()
    assert any("Transferred 499/505 items" in m for m in ulogs)
    assert trainer.last.is_file()


def test_tutorial_fork_checkpoint_becomes_this_forks_model():
    ckpt = require_shared("fixtures", "upstream", "bccd-yolo11n-dysample.pt")
    model = YOLO(str(ckpt))
    assert model.names == {0: "RBC", 1: "WBC", 2: "Platelets"}
    assert type(model.model.model[11]).__name__ == "DySample"
    fresh = DetectionModel("yolo11n-dysample.yaml", nc=3, verbose=False)
    assert model.model.state_dict().keys() == fresh.state_dict().keys()
    assert sum(p.numel() for p in model.model.parameters()) == sum(p.numel() for p in fresh.parameters())
    assert model.model.model[-1].nc == 3


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "train_args": {}}, evil)
    with pytest.raises(UnsafeCheckpointError, match="system"):
        YOLO(str(evil))
    assert not marker.exists()


def test_onnx_export_predicts_the_same_boxes_as_pt(tmp_path):
    ckpt = require_shared("fixtures", "upstream", "bccd-yolo11n-dysample.pt")
    image = sorted((ckpt.parents[2] / "datasets" / "bccd-test" / "images" / "test").glob("*.jpg"))[0]
    local = tmp_path / ckpt.name
    shutil.copy(ckpt, local)
    pt_result = YOLO(str(local)).predict(str(image), imgsz=320, conf=0.25)[0]
    onnx_file = YOLO(str(local)).export(format="onnx", imgsz=320, dynamic=True)
    onnx_result = YOLO(onnx_file).predict(str(image), imgsz=320, conf=0.25)[0]
    assert len(pt_result) == len(onnx_result) > 0
    assert torch.allclose(pt_result.boxes.xyxy, onnx_result.boxes.xyxy, atol=0.01)
    assert torch.allclose(pt_result.boxes.conf, onnx_result.boxes.conf, atol=1e-4)
    assert torch.equal(pt_result.boxes.cls, onnx_result.boxes.cls)
