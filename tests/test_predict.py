"""Prediction: sources, the streaming loop, saved outputs, the Results API and parity with upstream 8.4.

Most tests use a freshly built yolo11n (nc=2) on small generated images at a small imgsz, so they run anywhere
in seconds. The BCCD parity and CLI tests need ../shared and skip cleanly without it.
"""

import gc
import inspect
import json
import os
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import require_shared
from PIL import Image

from ultralytics import YOLO
from ultralytics.data.loaders import LoadImagesAndVideos, load_inference_source
from ultralytics.engine.predictor import check_imgsz, launched_from_cli
from ultralytics.engine.results import Boxes, Results
from ultralytics.models.yolo.detect import DetectionPredictor
from ultralytics.utils import CFG_DIR, yaml_load, yaml_save

REPO = Path(__file__).resolve().parents[1]
FAST = {"imgsz": 64, "conf": 0.0, "max_det": 5, "verbose": False}  # random weights: keep every candidate box


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A randomly initialised yolo11n with two named classes (weights are irrelevant to the plumbing tested).

    Built from a copy of yolo11.yaml with nc=2, so only one model is built, and fused once here, so the predictor's
    copy needs no fusing (which also counts FLOPs for a summary) on every call.
    """
    folder = tmp_path_factory.mktemp("cfg")
    yaml_save(folder / "yolo11.yaml", {**yaml_load(CFG_DIR / "models" / "11" / "yolo11.yaml"), "nc": 2})
    torch.manual_seed(0)
    m = YOLO(folder / "yolo11n.yaml")
    m.model.names = {0: "cat", 1: "dog"}
    m.model.fuse(verbose=False).eval()
    return m


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def images(tmp_path):
    """A folder with two images of different shapes and a non-image file that folder sources must skip."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), _image(48, 64, 1))
    cv2.imwrite(str(folder / "b.png"), _image(80, 40, 2))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _video(path, n=6, size=(64, 48)):
    """Write an MJPG .avi of ``n`` frames (MJPG is available in every OpenCV build)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        writer.write(_image(size[1], size[0], i))
    writer.release()
    return path


# ----------------------------------------------------------------------------------------------------- sources
def test_sources_file_folder_glob_array_pil_list(model, images):
    a, b = images / "a.jpg", images / "b.png"
    (r,) = model.predict(a, **FAST)
    assert r.path == str(a) and r.orig_shape == (48, 64) and isinstance(r.boxes, Boxes)
    assert 0 < len(r) <= 5 and r.boxes.data.shape[1] == 6
    assert torch.allclose(r.boxes.xywhn * torch.tensor([64, 48, 64, 48]), r.boxes.xywh, atol=1e-4)
    assert (r.boxes.xyxy[:, [0, 2]] <= 64).all() and (r.boxes.xyxy[:, [1, 3]] <= 48).all()  # clipped to the image
    assert [Path(r.path).name for r in model.predict(images, **FAST)] == ["a.jpg", "b.png"]
    assert len(model.predict(str(images / "*.png"), **FAST)) == 1
    (r,) = model.predict(_image(30, 50), **FAST)
    assert r.path == "image0.jpg" and r.orig_shape == (30, 50)
    (r,) = model.predict(Image.fromarray(_image(30, 50)), **FAST)
    assert r.orig_shape == (30, 50)
    assert [Path(r.path).name for r in model.predict([str(b), str(a)], **FAST)] == ["b.png", "a.jpg"]  # order kept
    assert [r.orig_shape for r in model.predict([str(a), _image(20, 30)], **FAST)] == [(48, 64), (20, 30)]


def test_source_errors(model, tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        model.predict(missing, **FAST)
    bad = tmp_path / "weights.yaml"
    bad.write_text("a: 1")
    with pytest.raises(ValueError, match="unsupported suffix"):
        load_inference_source(str(bad))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No images or videos"):
        load_inference_source(str(tmp_path / "empty"))
    with pytest.raises(NotImplementedError, match="offline"):
        load_inference_source("https://example.com/bus.jpg")
    with pytest.raises(TypeError):
        load_inference_source(3.5)


def test_video_stride_and_stream_generator(model, tmp_path):
    video = _video(tmp_path / "clip.avi", n=6)
    loader = LoadImagesAndVideos(str(video), vid_stride=2)
    infos = [info for _, _, batch_infos in loader for info in batch_infos]
    assert len(infos) == 3 and "(frame 3/3)" in infos[-1]
    gen = model.predict(video, stream=True, **FAST)
    assert inspect.isgenerator(gen)
    n = 0
    for r in gen:
        assert not torch.is_inference_mode_enabled()  # the caller's code between frames runs in its usual mode
        assert r.boxes.xyxyn.shape[1] == 4  # and can use the boxes there
        n += 1
    assert n == 6


def test_stream_keeps_nothing_between_frames(model, tmp_path):
    """A long video must not fill memory: a frame's Results is freed once the consumer moves on."""
    video = _video(tmp_path / "long.avi", n=5)
    predictor = DetectionPredictor(overrides=FAST)
    refs = []
    for r in predictor(source=str(video), model=model.model, stream=True):
        refs.append(weakref.ref(r))
        assert len(predictor.results) == 1
        del r
    gc.collect()
    assert sum(ref() is not None for ref in refs) <= 1  # at most the predictor's last batch


def test_video_saved(model, tmp_path):
    video = _video(tmp_path / "clip.avi", n=4)
    predictor = DetectionPredictor(overrides={**FAST, "save": True, "project": str(tmp_path / "runs")})
    predictor(source=str(video), model=model.model)
    out = predictor.save_dir / "clip.avi"
    assert out.exists()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()


# ----------------------------------------------------------------------------------------------------- saving
def test_python_api_does_not_save_by_default(model, images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model.predict(images / "a.jpg", **FAST)
    assert not (tmp_path / "runs").exists()


def test_save_images_and_txt_and_logs(model, images, tmp_path, monkeypatch, ulogs):
    monkeypatch.chdir(tmp_path)
    kw = {**FAST, "verbose": True, "save": True, "save_txt": True, "save_conf": True, "save_crop": True}
    results = model.predict(images, **kw)
    out = tmp_path / "runs" / "detect" / "predict"
    assert {p.name for p in out.glob("*.jpg")} == {"a.jpg", "b.jpg"}  # upstream writes JPEG for every image
    assert list(out.glob("crops/*/a.jpg"))
    lines = (out / "labels" / "a.txt").read_text().splitlines()
    assert len(lines) == len(results[0])
    assert all(len(line.split()) == 6 for line in lines)
    text = "\n".join(ulogs)
    assert f"image 1/2 {images / 'a.jpg'}: " in text and "Speed: " in text and "per image at shape (1, 3, " in text
    assert "Results saved to" in text and "2 labels saved to" in text
    model.predict(images, **kw)
    assert (tmp_path / "runs" / "detect" / "predict2").is_dir()  # never overwrite an earlier run


def test_cli_detection():
    assert launched_from_cli(["/usr/bin/yolo", "predict", "model=x.pt"])
    assert launched_from_cli(["/x/ultralytics/__main__.py", "mode=predict"])
    assert not launched_from_cli(["/x/ultralytics/__main__.py", "train"])
    assert not launched_from_cli(["/usr/bin/pytest", "predict"])


def test_check_imgsz():
    assert check_imgsz(640, 32) == [640, 640]
    assert check_imgsz([480, 500], 32) == [480, 512]


# ----------------------------------------------------------------------------------------------------- Results
@pytest.fixture
def result():
    img = _image(100, 200)
    data = torch.tensor([[10.0, 20.0, 50.0, 60.0, 0.9, 0.0], [100.0, 0.0, 200.0, 100.0, 0.5, 1.0],
                         [0.0, 50.0, 20.0, 100.0, 0.3, 0.0]])  # fmt: skip
    return Results(img, path="/data/pic.jpg", names={0: "cat", 1: "dog"}, boxes=data)


def test_boxes_formats_agree(result):
    b = result.boxes
    assert len(result) == 3 and b.shape == (3, 6) and b.data.shape == (3, 6)
    assert torch.equal(b.xywh[0], torch.tensor([30.0, 40.0, 40.0, 40.0]))
    assert torch.allclose(b.xyxyn[1], torch.tensor([0.5, 0.0, 1.0, 1.0]))
    assert torch.allclose(b.xywhn * torch.tensor([200, 100, 200, 100]), b.xywh)
    assert torch.allclose(b.xyxyn * torch.tensor([200, 100, 200, 100]), b.xyxy)
    assert b.conf.tolist() == pytest.approx([0.9, 0.5, 0.3]) and b.cls.tolist() == [0, 1, 0]
    n = result.numpy().boxes
    assert isinstance(n.xywhn, np.ndarray) and np.allclose(n.xywhn, b.xywhn.numpy())
    assert isinstance(result.cpu().boxes.data, torch.Tensor)
    assert len(result[1:]) == 2 and result[0].boxes.cls.tolist() == [0]
    assert [box.conf.item() for box in b] == pytest.approx([0.9, 0.5, 0.3])


def test_results_text_and_json(result):
    assert result.verbose() == "2 cats, 1 dog, "
    assert Results(_image(5, 5), "x.jpg", {0: "cat"}, boxes=torch.zeros(0, 6)).verbose() == "(no detections), "
    s = result.summary()
    assert s[0] == {
        "name": "cat",
        "class": 0,
        "confidence": 0.9,
        "box": {"x1": 10.0, "y1": 20.0, "x2": 50.0, "y2": 60.0},
    }
    assert result.summary(normalize=True)[1]["box"] == {"x1": 0.5, "y1": 0.0, "x2": 1.0, "y2": 1.0}
    assert json.loads(result.to_json()) == s


def test_results_files(result, tmp_path):
    txt = tmp_path / "labels" / "pic.txt"
    result.save_txt(txt)
    assert txt.read_text().splitlines()[0] == "0 0.15 0.4 0.2 0.4"
    txt.unlink()
    result.save_txt(txt, save_conf=True)
    assert txt.read_text().splitlines()[1] == "1 0.75 0.5 0.5 1 0.5"
    before = result.orig_img.copy()
    plotted = result.plot()
    assert plotted.shape == before.shape and not np.array_equal(plotted, before)
    assert np.array_equal(result.orig_img, before)  # drawing never touches the original
    assert np.array_equal(result.plot(boxes=False), before)
    out = result.save(str(tmp_path / "annotated.jpg"), conf=False, line_width=1)
    assert cv2.imread(out).shape == before.shape


# ------------------------------------------------------------------------------------------------ shared data
def _expected():
    return json.loads(require_shared("fixtures", "upstream", "expected_predictions.json").read_text())


@pytest.mark.parametrize("ckpt", ["bccd-yolo11n", "bccd-yolo11n-dysample"])
def test_bccd_parity_with_upstream(ckpt):
    """Same boxes (±1 px), confidences (±0.002) and classes as upstream 8.4.190's predict on two test images."""
    expected = _expected()
    images = require_shared("datasets", "bccd-test", "images", "test")
    m = YOLO(require_shared("fixtures", "upstream", f"{ckpt}.pt"))
    for name, per_model in expected["images"].items():
        exp = per_model[ckpt]
        (r,) = m.predict(images / name, imgsz=640, conf=0.25, verbose=False)
        assert r.boxes.cls.tolist() == exp["cls"], name
        np.testing.assert_allclose(r.boxes.conf.numpy(), exp["conf"], atol=0.002)
        np.testing.assert_allclose(r.boxes.xyxy.numpy(), exp["xyxy"], atol=1.0)


def test_cli_predict_saves_annotated_images(tmp_path):
    weights = require_shared("fixtures", "upstream", "bccd-yolo11n.pt")
    src = tmp_path / "src"
    src.mkdir()
    for f in sorted(require_shared("datasets", "bccd-test", "images", "test").glob("*.jpg"))[:2]:
        shutil.copy(f, src / f.name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "ultralytics", "predict", f"model={weights}", f"source={src}", "imgsz=320"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = sorted(p.name for p in (tmp_path / "runs" / "detect" / "predict").glob("*.jpg"))
    assert saved == sorted(p.name for p in src.glob("*.jpg"))
    assert "Results saved to" in proc.stdout
