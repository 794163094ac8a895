"""Shared test fixtures: the optional ../shared data folder and a handler that captures the package's logs."""

import logging
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "upstream"


def require_shared(*parts):
    """Return a path inside ../shared, or skip the test when that folder (a dev/CI extra) is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only beside a dev checkout)")
    return path


@pytest.fixture
def ulogs():
    """Collect messages logged to the 'ultralytics' logger (which does not propagate to the root logger)."""
    records = []

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = _Collect(level=logging.DEBUG)
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def make_dataset(root, n_train=8, n_val=4, size=96, nc=2, seed=0):
    """Write a tiny YOLO dataset of coloured rectangles (class = colour) and return its yaml path."""
    import cv2
    import numpy as np
    import yaml

    rng = np.random.default_rng(seed)
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img = np.full((size, size + 16, 3), 114, np.uint8)
            lines = []
            for _ in range(int(rng.integers(1, 4))):
                c = int(rng.integers(0, nc))
                w, h = rng.integers(size // 6, size // 2, 2)
                x0, y0 = int(rng.integers(0, size + 16 - w)), int(rng.integers(0, size - h))
                cv2.rectangle(img, (x0, y0), (x0 + int(w), y0 + int(h)), colours[c % len(colours)], -1)
                cx, cy = (x0 + w / 2) / (size + 16), (y0 + h / 2) / size
                lines.append(f"{c} {cx:.6f} {cy:.6f} {w / (size + 16):.6f} {h / size:.6f}")
            cv2.imwrite(str(root / "images" / split / f"im{i}.jpg"), img)
            (root / "labels" / split / f"im{i}.txt").write_text("\n".join(lines) + "\n")
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": {i: f"c{i}" for i in range(nc)}}
    file = root / "data.yaml"
    file.write_text(yaml.safe_dump(data))
    return file
