"""Tests of the detection data pipeline on tiny generated datasets (plus one optional check on the shared coco128)."""

import logging
import os
import random
import stat
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from ultralytics.data import (
    LetterBox,
    YOLODataset,
    build_dataloader,
    build_yolo_dataset,
    check_det_dataset,
    img2label_paths,
    verify_image_label,
)
from ultralytics.data.augment import Format, Mosaic, RandomFlip, RandomHSV, RandomPerspective
from ultralytics.data.dataset import load_label_cache
from ultralytics.utils import LOGGER, yaml_save
from ultralytics.utils.ops import scale_boxes, xywhn2xyxy

SHARED = Path(__file__).resolve().parents[2] / "shared"
H, W = 48, 64  # generated images: landscape, long side 64 so imgsz=64 loads them without resizing
BOX = (8, 12, 40, 36)  # white rectangle painted in every generated image, and its label (pixel xyxy)


def box_line(box=BOX, cls=0, h=H, w=W):
    """Return the YOLO label line of a pixel xyxy box."""
    x1, y1, x2, y2 = box
    return f"{cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"


def add_image(root, split, name, label="box", box=BOX, ext=".jpg", h=H, w=W):
    """Write ``images/<split>/<name><ext>`` (black with a white ``box``) and its label.

    ``label``: 'box' writes the box's line, None writes no label file, any other string is written verbatim.
    """
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    im_file = Path(root) / "images" / split / f"{name}{ext}"
    im_file.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(im_file), img)
    if label is not None:
        lb_file = Path(img2label_paths([im_file])[0])
        lb_file.parent.mkdir(parents=True, exist_ok=True)
        lb_file.write_text(box_line(box, h=h, w=w) + "\n" if label == "box" else label)
    return im_file


def make_dataset(root, n_train=4, n_val=2, nc=2):
    """Write a small two-split dataset plus its yaml (no ``path:`` key) and return the yaml path."""
    for i in range(n_train):
        add_image(root, "train", f"tr{i}")
    for i in range(n_val):
        add_image(root, "val", f"va{i}")
    yaml_file = Path(root) / "data.yaml"
    yaml_save(yaml_file, {"train": "images/train", "val": "images/val", "names": [f"c{i}" for i in range(nc)]})
    return yaml_file


@pytest.fixture
def logs(caplog):
    """Capture the 'ultralytics' logger, which does not propagate to the root logger caplog listens on."""
    caplog.set_level(logging.INFO, logger="ultralytics")
    LOGGER.addHandler(caplog.handler)
    yield caplog
    LOGGER.removeHandler(caplog.handler)


@pytest.fixture(autouse=True)
def _seed():
    """Make the random augmentations repeatable."""
    random.seed(0)
    np.random.seed(0)


def warnings_naming(caplog, name):
    """Return the captured warning messages that mention ``name``."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and name in r.getMessage()]


# ----------------------------------------------------------------------------------------------- dataset yaml
def test_img2label_paths_replaces_last_images_folder():
    """Only the last /images/ folder is swapped, and the suffix becomes .txt."""
    p = os.sep.join(["", "data", "images", "set", "images", "train", "a.b.jpg"])
    assert img2label_paths([p]) == [os.sep.join(["", "data", "images", "set", "labels", "train", "a.b.txt"])]


def test_check_det_dataset_folder_and_names(tmp_path):
    """Missing path -> yaml folder; names list -> dict; splits absolute; nc filled."""
    data = check_det_dataset(make_dataset(tmp_path))
    assert data["path"] == tmp_path.resolve()
    assert data["train"] == str(tmp_path.resolve() / "images" / "train")
    assert data["names"] == {0: "c0", 1: "c1"} and data["nc"] == 2
    assert data["yaml_file"] == str((tmp_path / "data.yaml").resolve())


@pytest.mark.parametrize(
    "names, nc, expected",
    [({"0": "a", "1": "b"}, None, {0: "a", 1: "b"}), (None, 3, {0: "class_0", 1: "class_1", 2: "class_2"})],
)
def test_check_det_dataset_names_variants(tmp_path, names, nc, expected):
    """Names may be a dict with string keys, or absent with only nc (upstream's class_i names)."""
    make_dataset(tmp_path)
    cfg = {k: v for k, v in {"train": "images/train", "val": "images/val", "names": names, "nc": nc}.items() if v}
    yaml_save(tmp_path / "d.yaml", cfg)
    data = check_det_dataset(tmp_path / "d.yaml")
    assert data["names"] == expected and data["nc"] == len(expected)


def test_check_det_dataset_bad_keys(tmp_path):
    """Missing val, or names/nc missing or inconsistent, raise like upstream."""
    make_dataset(tmp_path)
    for cfg in ({"train": "images/train", "names": ["a"]}, {"train": "a", "val": "b"}):
        yaml_save(tmp_path / "bad.yaml", cfg)
        with pytest.raises(SyntaxError):
            check_det_dataset(tmp_path / "bad.yaml")
    yaml_save(tmp_path / "bad.yaml", {"train": "images/train", "val": "images/val", "names": ["a"], "nc": 2})
    with pytest.raises(SyntaxError, match="must match"):
        check_det_dataset(tmp_path / "bad.yaml")


def test_check_det_dataset_relative_path_list_and_txt(tmp_path):
    """A relative path resolves against the yaml's folder; splits may be lists of folders or .txt image lists."""
    root = tmp_path / "ds"
    make_dataset(root)
    (root / "train.txt").write_text("./images/train/tr0.jpg\nimages/train/tr1.jpg\n")
    cfg_dir = tmp_path / "cfgs"
    cfg_dir.mkdir()
    yaml_save(
        cfg_dir / "d.yaml",
        {"path": "../ds", "train": "train.txt", "val": ["images/val", "images/train"], "names": ["a", "b"]},
    )
    data = check_det_dataset(str(cfg_dir / "d.yaml"))
    assert data["path"] == root.resolve()
    assert data["val"] == [str(root.resolve() / "images" / "val"), str(root.resolve() / "images" / "train")]
    train = YOLODataset(data["train"], imgsz=64, augment=False, data=data)
    assert [Path(f).name for f in train.im_files] == ["tr0.jpg", "tr1.jpg"]
    val = YOLODataset(data["val"], imgsz=64, augment=False, data=data)
    assert len(val) == 6


def test_check_det_dataset_accepts_dict(tmp_path):
    """A dict with an absolute path works like a yaml."""
    make_dataset(tmp_path)
    data = check_det_dataset({"path": str(tmp_path), "train": "images/train", "val": "images/val", "nc": 1})
    assert data["val"] == str(tmp_path.resolve() / "images" / "val") and data["names"] == {0: "class_0"}


def test_missing_dataset_names_folder_and_layout(tmp_path, monkeypatch):
    """A packaged yaml name resolves; missing images raise FileNotFoundError naming the folder and the layout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLO_DATASETS_DIR", str(tmp_path / "datasets"))
    with pytest.raises(FileNotFoundError) as e:
        check_det_dataset("coco8.yaml")
    msg = str(e.value)
    assert str(tmp_path.resolve() / "datasets" / "coco8" / "images" / "val") in msg
    assert "images/<split>" in msg and "labels/<split>" in msg and "never downloads" in msg
    add_image(tmp_path / "datasets" / "coco8", "val", "a")  # once the data is in place the same name works
    data = check_det_dataset("coco8.yaml")
    assert data["nc"] == 80 and data["names"][79] == "toothbrush"
    with pytest.raises(FileNotFoundError, match="images/<split>"):
        YOLODataset(data["train"], imgsz=64, data=data)  # a missing train split is reported the same way


def test_unknown_yaml_raises(tmp_path):
    """A yaml that exists nowhere is reported as such."""
    with pytest.raises(FileNotFoundError, match="not found"):
        check_det_dataset(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------------------ scan and cache
def test_scan_summary_and_cache_rebuild(tmp_path, logs):
    """The scan logs upstream's summary, writes a safe cache beside the labels and rescans when a label changes."""
    for i in range(3):
        add_image(tmp_path, "train", f"a{i}")
    add_image(tmp_path, "train", "empty", label="")
    add_image(tmp_path, "train", "missing", label=None)
    data = {"names": {0: "a", 1: "b"}}
    ds = YOLODataset(str(tmp_path / "images" / "train"), imgsz=64, augment=False, data=data)
    labels_dir = tmp_path / "labels" / "train"
    # upstream counts label files found as "images" (the empty one too) and empty + missing as backgrounds
    assert f"Scanning {labels_dir}... 4 images, 2 backgrounds, 0 corrupt" in logs.text
    assert len(ds) == 5 and sum(len(lb["cls"]) for lb in ds.labels) == 3
    cache_file = tmp_path / "labels" / "train.cache"
    assert cache_file.is_file() and load_label_cache(cache_file)["stats"] == [4, 1, 1, 0, 5]
    assert not list(tmp_path.rglob("*.tmp"))

    logs.clear()
    YOLODataset(str(tmp_path / "images" / "train"), imgsz=64, augment=False, data=data)
    assert f"Scanning {cache_file}... 4 images, 2 backgrounds" in logs.text  # served from the cache

    (labels_dir / "empty.txt").write_text(box_line(cls=1) + "\n" + box_line((1, 1, 20, 20)) + "\n")
    logs.clear()
    ds = YOLODataset(str(tmp_path / "images" / "train"), imgsz=64, augment=False, data=data)
    assert "4 images, 1 backgrounds" in logs.text and "New cache created" in logs.text
    assert sum(len(lb["cls"]) for lb in ds.labels) == 5


def test_foreign_cache_is_ignored(tmp_path):
    """A pickled cache (upstream's format) is never unpickled: it reads as absent and gets rebuilt."""
    make_dataset(tmp_path)
    np.save(tmp_path / "labels" / "train.cache.npy", np.array({"labels": []}, dtype=object), allow_pickle=True)
    os.replace(tmp_path / "labels" / "train.cache.npy", tmp_path / "labels" / "train.cache")
    assert load_label_cache(tmp_path / "labels" / "train.cache") is None
    ds = YOLODataset(str(tmp_path / "images" / "train"), imgsz=64, augment=False)
    assert len(ds) == 4 and load_label_cache(tmp_path / "labels" / "train.cache") is not None


def test_read_only_cache_folder_only_warns(tmp_path, logs):
    """A labels folder that may not be written costs a warning, not the run (also when running as root)."""
    make_dataset(tmp_path)
    labels = tmp_path / "labels"
    labels.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        ds = YOLODataset(str(tmp_path / "images" / "train"), imgsz=64, augment=False)
    finally:
        labels.chmod(stat.S_IRWXU)
    assert len(ds) == 4 and "not writeable, cache not saved" in logs.text
    assert not (labels / "train.cache").exists()


def test_bad_data_one_warning_per_file(tmp_path, logs):
    """Each broken file gets exactly one warning naming it; the good ones, incl. a PNG named .jpg, still load."""
    ok = box_line()
    add_image(tmp_path, "train", "good")
    add_image(tmp_path, "train", "empty", label="")
    trunc = add_image(tmp_path, "train", "trunc")
    trunc.write_bytes(trunc.read_bytes()[: trunc.stat().st_size // 2])
    png = add_image(tmp_path, "train", "png_as", ext=".png")
    os.replace(png, png.with_suffix(".jpg"))  # its label labels/train/png_as.txt already matches the stem
    bad = {
        "cols4": "0 0.5 0.5 0.2\n",
        "cls": f"{ok}\n5 0.5 0.5 0.2 0.2\n",
        "neg": "0 -0.1 0.5 0.2 0.2\n",
        "outside": "0 0.5 1.2 0.2 0.2\n",
        "words": "zero 0.5 0.5 0.2 0.2\n",
    }
    for name, text in bad.items():
        add_image(tmp_path, "train", name, label=text)
    add_image(tmp_path, "train", "dup", label=f"{ok}\n{ok}\n{box_line((2, 2, 9, 9))}\n")
    add_image(tmp_path, "train", "zero", label=f"{ok}\n0 0.5 0.5 0.0 0.2\n")

    ds = YOLODataset(str(tmp_path / "images" / "train"), imgsz=64, augment=False, data={"names": {0: "a", 1: "b"}})
    for name in [*bad, "trunc", "dup", "zero"]:
        assert len(warnings_naming(logs, f"{name}.jpg")) == 1, name
    for name in ("good", "empty", "png_as"):
        assert not warnings_naming(logs, f"{name}.jpg"), name
    assert "duplicate labels removed" in warnings_naming(logs, "dup.jpg")[0]
    assert "zero-size" in warnings_naming(logs, "zero.jpg")[0]
    assert "exceeds dataset class count 2" in warnings_naming(logs, "cls.jpg")[0]
    names = sorted(Path(f).stem for f in ds.im_files)
    assert names == ["dup", "empty", "good", "png_as", "zero"]
    counts = {Path(lb["im_file"]).stem: len(lb["cls"]) for lb in ds.labels}
    assert counts == {"dup": 2, "empty": 0, "good": 1, "png_as": 1, "zero": 1}
    assert all(ds[i]["img"].shape == (3, 64, 64) for i in range(len(ds)))


def test_polygon_labels_become_boxes(tmp_path):
    """Segmentation-style rows (class + polygon) are read as the boxes enclosing the polygons."""
    im = add_image(tmp_path, "train", "poly", label="1 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n")
    _, lb, *_ = verify_image_label((str(im), img2label_paths([im])[0], "", 2, False))
    np.testing.assert_allclose(lb, [[1, 0.3, 0.4, 0.4, 0.4]], atol=1e-6)


def test_verify_image_label_missing_label(tmp_path):
    """A missing label file is a background, not an error."""
    im = add_image(tmp_path, "train", "a", label=None)
    f, lb, shape, nm, nf, ne, nc, msg = verify_image_label((str(im), "/nonexistent.txt", "", 80, False))
    assert f == str(im) and lb.shape == (0, 5) and shape == (H, W) and (nm, nf, ne, nc, msg) == (1, 0, 0, 0, "")


# --------------------------------------------------------------------------------------------- transforms
def test_letterbox_maps_a_box_exactly():
    """A 50x100 image letterboxed to 64x64: scale 0.64, 16 px grey bars top and bottom, box follows."""
    img = np.zeros((50, 100, 3), np.uint8)
    out = LetterBox(new_shape=(64, 64))(
        {"img": img, "bboxes": np.array([[10, 10, 30, 40]], np.float32), "cls": np.zeros((1, 1), np.float32)}
    )
    assert out["img"].shape == (64, 64, 3) and out["resized_shape"] == (64, 64)
    np.testing.assert_allclose(out["bboxes"], [[6.4, 22.4, 19.2, 41.6]], rtol=1e-6)
    assert (out["img"][:16] == 114).all() and (out["img"][-16:] == 114).all()
    assert LetterBox(new_shape=64, auto=True, stride=32)(image=img).shape == (32, 64, 3)  # minimum rectangle
    assert LetterBox(new_shape=(64, 64), scale_fill=True)(image=img).shape == (64, 64, 3)


def test_val_sample_maps_back_to_original(tmp_path):
    """Val letterbox records ratio_pad so scale_boxes recovers the original-pixel box."""
    add_image(tmp_path, "val", "a", h=60, w=80, box=(10, 20, 50, 40))
    ds = YOLODataset(str(tmp_path / "images" / "val"), imgsz=64, augment=False)
    s = ds[0]
    assert s["img"].shape == (3, 64, 64) and s["img"].dtype == torch.uint8
    assert s["ori_shape"] == (60, 80) and s["ratio_pad"] == ((0.8, 0.8), (0, 8))
    box = xywhn2xyxy(s["bboxes"], 64, 64)
    np.testing.assert_allclose(
        scale_boxes((64, 64), box, s["ori_shape"], s["ratio_pad"]), [[10, 20, 50, 40]], atol=1e-4
    )


def test_flip_mirrors_boxes():
    """Horizontal flips mirror x, vertical flips mirror y, images with them."""
    img = np.zeros((H, W, 3), np.uint8)
    img[BOX[1] : BOX[3], BOX[0] : BOX[2]] = 255
    labels = {"img": img, "bboxes": np.array([BOX], np.float32), "cls": np.zeros((1, 1), np.float32)}
    out = RandomFlip(p=1.0, direction="horizontal")(dict(labels))
    np.testing.assert_array_equal(out["bboxes"], [[W - BOX[2], BOX[1], W - BOX[0], BOX[3]]])
    assert (out["img"][BOX[1] : BOX[3], W - BOX[2] : W - BOX[0]] == 255).all()
    out = RandomFlip(p=1.0, direction="vertical")(dict(labels))
    np.testing.assert_array_equal(out["bboxes"], [[BOX[0], H - BOX[3], BOX[2], H - BOX[1]]])
    assert RandomFlip(p=0.0)(dict(labels))["bboxes"] is labels["bboxes"]


def white_inside(img, boxes):
    """True when every box (shrunk by 1 px against interpolation) covers only white pixels."""
    for x1, y1, x2, y2 in np.asarray(boxes):
        patch = img[int(np.ceil(y1)) + 1 : int(y2) - 1, int(np.ceil(x1)) + 1 : int(x2) - 1]
        if patch.size and patch.min() < 200:
            return False
    return True


def test_mosaic_and_affine_shapes_and_boxes(tmp_path):
    """Mosaic makes a 2*imgsz canvas, the affine step crops it to imgsz, boxes stay on their white squares."""
    make_dataset(tmp_path, n_train=6)
    hyp = {"translate": 0.0, "scale": 0.0, "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0}
    ds = YOLODataset(str(tmp_path / "images" / "train"), imgsz=64, augment=True, hyp=hyp, batch_size=2)
    for _ in range(5):
        m = Mosaic(ds, imgsz=64, p=1.0)(ds.get_image_and_label(random.randrange(len(ds))))
        assert m["img"].shape == (128, 128, 3) and m["mosaic_border"] == (-32, -32)
        b = m["bboxes"]
        assert len(b) and (b >= 0).all() and (b <= 128).all() and white_inside(m["img"], b)
        a = RandomPerspective(translate=0.0, scale=0.0)(m)
        assert a["img"].shape == (64, 64, 3) and "mosaic_border" not in a
        assert ((a["bboxes"] >= 0) & (a["bboxes"] <= 64)).all() and white_inside(a["img"], a["bboxes"])
    s = ds[0]
    assert s["img"].shape == (3, 64, 64) and s["bboxes"].dtype == torch.float32 and s["cls"].shape[1] == 1
    assert ((s["bboxes"] >= 0) & (s["bboxes"] <= 1)).all() and set(s) >= {"im_file", "ori_shape", "batch_idx"}


def test_affine_rotation_keeps_boxes_inside():
    """With rotation, shear and scale the surviving boxes stay inside the output image."""
    img = np.full((64, 64, 3), 50, np.uint8)
    boxes = np.array([[0, 0, 30, 30], [20, 20, 60, 60], [50, 5, 63, 60]], np.float32)
    rp = RandomPerspective(degrees=30, translate=0.2, scale=0.5, shear=10)
    for _ in range(10):
        out = rp({"img": img.copy(), "bboxes": boxes.copy(), "cls": np.arange(3, dtype=np.float32)[:, None]})
        assert out["img"].shape == (64, 64, 3) and len(out["bboxes"]) == len(out["cls"])
        assert ((out["bboxes"] >= 0) & (out["bboxes"] <= 64)).all()


def test_hsv_and_format_channel_order():
    """HSV keeps shape and dtype; Format returns CHW RGB uint8 and normalised xywh."""
    img = np.zeros((8, 16, 3), np.uint8)
    img[..., 0] = 255  # pure blue in BGR
    out = RandomHSV(0.015, 0.7, 0.4)({"img": img.copy()})
    assert out["img"].shape == img.shape and out["img"].dtype == np.uint8
    f = Format()({"img": img, "bboxes": np.array([[0, 0, 8, 4]], np.float32), "cls": np.ones((1, 1), np.float32)})
    assert f["img"].shape == (3, 8, 16) and f["img"][2].min() == 255 and f["img"][0].max() == 0
    assert f["img"].is_contiguous()
    torch.testing.assert_close(f["bboxes"], torch.tensor([[0.25, 0.25, 0.5, 0.5]]))
    assert f["batch_idx"].shape == (1,) and f["cls"].dtype == torch.float32


# ------------------------------------------------------------------------------------- batching and loading
def test_collate_fn_offsets_batch_idx(tmp_path):
    """collate_fn stacks images, concatenates boxes and numbers each box with its image's position."""
    add_image(tmp_path, "val", "a", label=box_line() + "\n" + box_line((1, 1, 5, 5)) + "\n")
    add_image(tmp_path, "val", "b", label=None)
    add_image(tmp_path, "val", "c", label="\n".join(box_line((i, i, 20 + i, 20 + i)) for i in range(3)) + "\n")
    ds = YOLODataset(str(tmp_path / "images" / "val"), imgsz=64, augment=False)
    b = YOLODataset.collate_fn([ds[i] for i in range(3)])
    assert b["img"].shape == (3, 3, 64, 64) and b["bboxes"].shape == (5, 4) and b["cls"].shape == (5, 1)
    assert b["batch_idx"].tolist() == [0, 0, 2, 2, 2]
    assert len(b["im_file"]) == 3 and len(b["ratio_pad"]) == 3


def test_rect_val_loader_and_train_loader(tmp_path):
    """build_yolo_dataset/build_dataloader with workers=0: rect val batches and augmented train batches."""
    root = tmp_path
    make_dataset(root, n_train=5, n_val=0)
    add_image(root, "val", "tall", h=64, w=40, box=(5, 5, 30, 50))
    add_image(root, "val", "wide", h=30, w=64, box=(5, 5, 50, 25))
    data = check_det_dataset(root / "data.yaml")
    cfg = SimpleNamespace(imgsz=64, rect=False, cache=False, single_cls=False, classes=None, fraction=1.0, mosaic=1.0)
    val = build_yolo_dataset(cfg, data["val"], 1, data, mode="val", rect=True, stride=32)
    shapes = sorted(tuple(int(v) for v in s) for s in val.batch_shapes)
    assert shapes == [(64, 96), (96, 64)]  # ceil(shape * 64 / 32 + 0.5) * 32
    cv2.setNumThreads(2)
    batches = list(build_dataloader(val, 1, workers=0, shuffle=False))
    assert cv2.getNumThreads() == 1  # cv2_single_thread(): OpenCV runs in the caller, as upstream sets at import
    assert [tuple(b["img"].shape[2:]) for b in batches] == [(64, 96), (96, 64)]
    train = build_yolo_dataset(cfg, data["train"], 2, data, mode="train")
    loader = build_dataloader(train, 2, workers=0, shuffle=True)
    batches = list(loader)
    assert len(batches) == 3 and all(b["img"].shape[1:] == (3, 64, 64) for b in batches)
    assert sum(len(b["im_file"]) for b in batches) == 5
    train.close_mosaic()
    assert train.transforms.transforms[0].transforms[0].p == 0.0  # the Mosaic step is now a no-op
    assert next(iter(loader))["img"].shape == (2, 3, 64, 64)


def test_loader_reset_restarts_persistent_workers(tmp_path):
    """With workers, reset() drops the persistent workers so the next epoch forks them with the changed dataset."""
    data = check_det_dataset(make_dataset(tmp_path, n_train=4))
    train = YOLODataset(data["train"], imgsz=64, augment=True, batch_size=2, data=data)
    loader = build_dataloader(train, 2, workers=1, shuffle=False)
    assert loader.num_workers == 1 and loader.persistent_workers
    assert len(list(loader)) == 2 and loader._iterator is not None
    train.close_mosaic()
    loader.reset()
    assert loader._iterator is None and len(list(loader)) == 2


def test_classes_single_cls_fraction_and_caches(tmp_path):
    """classes filters objects, single_cls zeroes classes, fraction trims images, cache='ram'/'disk' work."""
    add_image(tmp_path, "train", "a", label=box_line(cls=0) + "\n" + box_line((1, 1, 9, 9), cls=1) + "\n")
    add_image(tmp_path, "train", "b", label=box_line(cls=1) + "\n")
    path = str(tmp_path / "images" / "train")
    ds = YOLODataset(path, imgsz=64, augment=False, classes=[1])
    assert [lb["cls"].ravel().tolist() for lb in ds.labels] == [[1.0], [1.0]]
    ds = YOLODataset(path, imgsz=64, augment=False, single_cls=True, fraction=0.5, cache="ram")
    assert len(ds) == 1 and ds.labels[0]["cls"].ravel().tolist() == [0.0, 0.0] and ds.ims[0] is not None
    ds = YOLODataset(path, imgsz=64, augment=False, cache="disk")
    assert (tmp_path / "images" / "train" / "a.npy").is_file() and ds[1]["img"].shape == (3, 64, 64)


@pytest.mark.skipif(not (SHARED / "datasets" / "coco128").is_dir(), reason="shared datasets not present")
def test_real_coco128_scan(tmp_path, logs):
    """The shared coco128 train2017 scans as 128 images, 929 boxes, 2 backgrounds (linked, so nothing is written)."""
    src = SHARED / "datasets" / "coco128"
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "train2017").symlink_to(src / sub / "train2017", target_is_directory=True)
    data = check_det_dataset(src / "coco128.yaml")
    ds = YOLODataset(str(tmp_path / "images" / "train2017"), imgsz=64, augment=False, data=data)
    assert len(ds) == 128 and sum(len(lb["cls"]) for lb in ds.labels) == 929
    assert sum(len(lb["cls"]) == 0 for lb in ds.labels) == 2
    assert "126 images, 2 backgrounds, 0 corrupt" in logs.text
