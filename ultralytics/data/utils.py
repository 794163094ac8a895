"""Dataset YAML resolution and per-file verification for YOLO detection datasets.

Everything here is plain file-system work on the upstream Ultralytics dataset layout
(``<root>/images/<split>/*.jpg`` beside ``<root>/labels/<split>/*.txt``). Nothing is ever downloaded: a yaml's
``download:`` key is read past, and missing data is reported with the layout the user has to provide.
"""

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ultralytics.utils import CFG_DIR, ROOT, yaml_load

IMG_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpeg2000", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm"}
)
FORMATS_HELP = f"Supported image formats are: {', '.join(sorted(IMG_FORMATS))}."
LAYOUT_HELP = (
    "Expected YOLO layout under the dataset root:\n"
    "  <root>/images/<split>/*.jpg   e.g. images/train2017/000000000009.jpg\n"
    "  <root>/labels/<split>/*.txt   same stem as the image, one 'class x_center y_center width height' line per "
    "box, coordinates normalised to 0-1"
)
DATASETS_CFG_DIR = CFG_DIR / "datasets"
EXIF_ORIENTATION = 0x0112  # EXIF tag whose values 6 and 8 mean the stored image is rotated by 90 degrees
SPLIT_KEYS = ("train", "val", "test", "minival")


def img2label_paths(img_paths):
    """Map image paths to label paths by swapping the last ``/images/`` folder for ``/labels/`` and the suffix.

    Only the last occurrence is replaced so that a dataset stored under e.g. ``/data/images/coco/images/train``
    still finds its labels next to its own images.
    """
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [sb.join(p.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt" for p in map(str, img_paths)]


def get_hash(paths):
    """Return one hash over paths, sizes and modification times, so any added, removed or edited file changes it."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode())
        try:
            st = os.stat(p)
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            h.update(b"missing")
    return h.hexdigest()


def is_dir_writeable(path):
    """Say whether files may be written in ``path``.

    The permission bits are honoured even for root (``os.access`` alone says yes to root everywhere), so a
    dataset shipped read-only, like the shared fixtures, is never modified.
    """
    path = Path(path)
    try:
        return path.is_dir() and os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    except OSError:
        return False


def exif_size(img):
    """Return the (width, height) a PIL image has once its EXIF orientation is applied, as cv2.imread returns it."""
    w, h = img.size
    try:
        if img.getexif().get(EXIF_ORIENTATION) in {6, 8}:
            return h, w
    except Exception:  # unreadable EXIF is common and harmless; the stored size is then the right one
        pass
    return w, h


def _restore_jpeg(im_file):
    """Re-encode a JPEG that lacks its end-of-image marker, so later reads are clean; return a note for the log.

    A file that does not decode completely raises here and is treated as corrupt by the caller. A folder that may
    not be written is left alone and only reported.
    """
    with Image.open(im_file) as im:
        im = ImageOps.exif_transpose(im)
        im.load()  # raises on truncated data: the image is unusable, not just missing its trailing marker
    folder = Path(im_file).parent
    if not is_dir_writeable(folder):
        return "corrupt JPEG (no end-of-image marker) decodes fully but was not restored: folder is read-only"
    tmp = f"{im_file}.{os.getpid()}.tmp"
    im.save(tmp, "JPEG", subsampling=0, quality=100)
    os.replace(tmp, im_file)
    return "corrupt JPEG restored and saved"


def _verify_image(im_file):
    """Check that an image opens, is large enough and has a supported format; return (shape hw, note)."""
    with Image.open(im_file) as im:
        fmt = (im.format or "").lower()
        im.verify()  # must come straight after open (reading EXIF first breaks it for PNG)
    with Image.open(im_file) as im:
        w, h = exif_size(im)
    if h < 10 or w < 10:
        raise ValueError(f"image size {(h, w)} <10 pixels")
    if fmt not in IMG_FORMATS:
        raise ValueError(f"invalid image format {fmt}. {FORMATS_HELP}")
    note = ""
    if fmt in {"jpg", "jpeg"}:
        with open(im_file, "rb") as f:
            f.seek(-2, os.SEEK_END)
            if f.read() != b"\xff\xd9":
                note = _restore_jpeg(im_file)
    return (h, w), note


def segments2boxes(segments):
    """Turn polygon labels (lists of x, y points) into the xywh boxes that enclose them."""
    boxes = []
    for s in segments:
        x, y = s[:, 0], s[:, 1]
        boxes.append([(x.min() + x.max()) / 2, (y.min() + y.max()) / 2, x.max() - x.min(), y.max() - y.min()])
    return np.array(boxes, dtype=np.float32).reshape(-1, 4)


def _parse_rows(rows):
    """Turn split label lines into an (n, 5) float32 array, reading polygon rows (>6 values) as their boxes."""
    if any(len(r) > 6 for r in rows):  # a segmentation label file: keep the class, box the polygon
        cls = np.array([r[0] for r in rows], dtype=np.float32).reshape(-1, 1)
        segments = [np.array(r[1:], dtype=np.float32).reshape(-1, 2) for r in rows]
        return np.concatenate((cls, segments2boxes(segments)), 1)
    bad = next((i for i, r in enumerate(rows) if len(r) != 5), None)
    if bad is not None:
        raise ValueError(f"labels require 5 columns (class x y w h), line {bad + 1} has {len(rows[bad])}")
    return np.array(rows, dtype=np.float32)


def _check_label_values(lb, num_cls, single_cls):
    """Raise with the reason when a label array is unusable: the whole file is then skipped, as upstream does."""
    if not np.isfinite(lb).all():
        raise ValueError("non-numeric or infinite label values")
    if lb[:, 1:].max() > 1:
        raise ValueError(f"non-normalized or out of bounds coordinates {lb[:, 1:][lb[:, 1:] > 1]}")
    if lb.min() < 0:
        raise ValueError(f"negative label values {lb[lb < 0]}")
    if (lb[:, 0] % 1 != 0).any():
        raise ValueError(f"non-integer class ids {lb[:, 0][lb[:, 0] % 1 != 0]}")
    max_cls = int(lb[:, 0].max())
    if num_cls is not None and not single_cls and max_cls >= num_cls:
        raise ValueError(
            f"Label class {max_cls} exceeds dataset class count {num_cls}. Possible class labels are 0-{num_cls - 1}"
        )


def _repair_labels(lb):
    """Drop duplicate rows and zero-size boxes; return the kept rows and what was removed (empty when nothing)."""
    notes = []
    _, keep = np.unique(lb, axis=0, return_index=True)
    if len(keep) < len(lb):
        notes.append(f"{len(lb) - len(keep)} duplicate labels removed")
        lb = lb[np.sort(keep)]
    sized = (lb[:, 3] > 0) & (lb[:, 4] > 0)
    if not sized.all():
        notes.append(f"{int((~sized).sum())} zero-size boxes removed")
        lb = lb[sized]
    return lb, notes


def read_label_file(lb_file, num_cls=None, single_cls=False):
    """Read one YOLO label file into an (n, 5) [class, x, y, w, h] array, plus notes on any repairs made.

    Raises:
        ValueError: When the file cannot be trusted (bad columns, out-of-range values, unknown class).
    """
    with open(lb_file, encoding="utf-8") as f:
        rows = [line.split() for line in f.read().strip().splitlines() if line.strip()]
    if not rows:
        return np.zeros((0, 5), dtype=np.float32), []
    lb = _parse_rows(rows)
    _check_label_values(lb, num_cls, single_cls)
    return _repair_labels(lb)


def verify_image_label(args):
    """Verify one (image, label) pair for the dataset scan.

    Args:
        args (tuple): (im_file, lb_file, prefix, num_cls, single_cls); num_cls may be None to skip the class check.

    Returns:
        (tuple): (im_file | None, labels (n, 5) float32 | None, shape (h, w) | None, nm, nf, ne, nc, msg) where
            nm/nf/ne/nc count a missing, found, empty or corrupt label and msg is a warning ('' when clean). A
            corrupt pair comes back with None for the file, labels and shape so the scan drops it.
    """
    im_file, lb_file, prefix, num_cls, single_cls = args
    nm = nf = ne = 0
    try:
        shape, note = _verify_image(im_file)
        notes = [note] if note else []
        if os.path.isfile(lb_file):
            nf = 1
            lb, fixes = read_label_file(lb_file, num_cls, single_cls)
            notes += fixes
            ne = int(len(lb) == 0)
        else:
            nm = 1
            lb = np.zeros((0, 5), dtype=np.float32)
        msg = f"{prefix}WARNING ⚠️ {im_file}: {'; '.join(notes)}" if notes else ""
        return im_file, lb.astype(np.float32), shape, nm, nf, ne, 0, msg
    except Exception as e:
        msg = f"{prefix}WARNING ⚠️ {im_file}: ignoring corrupt image/label: {e}"
        return None, None, None, nm, nf, ne, 1, msg


def check_class_names(names):
    """Return class names as a {int: str} dict with keys 0..n-1, accepting a list or a dict with str/int keys."""
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    names = {int(k): str(v) for k, v in names.items()}
    n = len(names)
    if names and (min(names) != 0 or max(names) != n - 1):
        raise KeyError(
            f"{n}-class dataset requires class indices 0-{n - 1}, but you have invalid class indices "
            f"{min(names)}-{max(names)} defined in your dataset YAML."
        )
    return names


def datasets_dir():
    """Return the folder relative dataset roots fall back to: beside the git checkout, else the working directory.

    This mirrors upstream's default ``datasets_dir`` setting, so ``path: ../datasets/coco128`` in the packaged
    yamls points at ``<checkout parent>/datasets/coco128``.
    """
    env = os.getenv("YOLO_DATASETS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    repo = ROOT.parent
    base = repo.parent if (repo / ".git").exists() else Path.cwd()
    return (base / "datasets").resolve()


def find_dataset_yaml(dataset):
    """Locate a dataset yaml: an existing path first, then a bare name like ``coco128.yaml`` among the packaged ones."""
    file = Path(dataset).expanduser()
    if file.is_file():
        return file.resolve()
    packaged = DATASETS_CFG_DIR / file.name
    if file.parent == Path(".") and packaged.is_file():
        return packaged
    raise FileNotFoundError(
        f"Dataset yaml '{dataset}' not found. Pass a path to a dataset yaml, or the name of one packaged in "
        f"'{DATASETS_CFG_DIR}' ({', '.join(sorted(p.name for p in DATASETS_CFG_DIR.glob('*.yaml')))})."
    )


def _resolve_root(path, yaml_file):
    """Return the absolute dataset root for a yaml's ``path:`` value.

    A missing ``path`` means the yaml's own folder. A relative one is tried against the yaml's folder, then the
    working directory, then ``datasets_dir()``; the first that exists wins. When none exists the error should
    name the most likely place: ``datasets_dir()`` for the packaged yamls, the yaml's folder for a user's own.
    """
    yaml_dir = Path(yaml_file).parent if yaml_file else Path.cwd()
    if not path:
        return yaml_dir.resolve()
    path = Path(path).expanduser()
    if path.is_absolute():
        return path.resolve()
    candidates = [yaml_dir / path, Path.cwd() / path, datasets_dir() / path]
    found = next((c for c in candidates if c.exists()), None)
    if found is not None:
        return found.resolve()
    packaged = yaml_file and Path(yaml_file).resolve().parent == DATASETS_CFG_DIR.resolve()
    return (candidates[2] if packaged else candidates[0]).resolve()


def _resolve_split(root, value):
    """Resolve a split entry (str or list) against the dataset root, with upstream's '../' fallback."""
    if isinstance(value, (list, tuple)):
        return [_resolve_split(root, v) for v in value]
    x = (root / str(value)).resolve()
    if not x.exists() and str(value).startswith("../"):
        alt = (root / str(value)[3:]).resolve()
        x = alt if alt.exists() else x
    return str(x)


def _check_keys(data, name):
    """Validate the required keys of a dataset dict and fill ``names``/``nc`` from each other."""
    if "val" not in data and "validation" in data:
        data["val"] = data.pop("validation")
    for k in ("train", "val"):
        if k not in data:
            raise SyntaxError(f"{name} '{k}:' key missing ❌.\n'train' and 'val' are required in all data YAMLs.")
    if "names" not in data and "nc" not in data:
        raise SyntaxError(f"{name} key missing ❌.\n either 'names' or 'nc' are required in all data YAMLs.")
    if "names" in data and "nc" in data and len(data["names"]) != data["nc"]:
        raise SyntaxError(f"{name} 'names' length {len(data['names'])} and 'nc: {data['nc']}' must match.")
    if "names" not in data:
        data["names"] = [f"class_{i}" for i in range(int(data["nc"]))]
    data["names"] = check_class_names(data["names"])
    data["nc"] = len(data["names"])


def missing_data_message(name, missing, root):
    """Explain which dataset folder is missing and what layout is expected, for FileNotFoundError."""
    return (
        f"Dataset '{name}' images not found, missing path '{missing}'.\n"
        f"Dataset root: '{root}'.\n{LAYOUT_HELP}\n"
        "This fork never downloads datasets (any 'download:' key in the yaml is ignored): put the data there, or "
        "set 'path:' in the yaml to where it lives."
    )


def check_det_dataset(dataset, autodownload=False):
    """Load and validate a detection dataset yaml (or dict) and resolve every split to an absolute path.

    Args:
        dataset (str | Path | dict): A yaml path, a packaged yaml name such as ``coco128.yaml``, or a loaded dict.
        autodownload (bool): Accepted for upstream compatibility; datasets are never downloaded.

    Returns:
        (dict): The yaml's keys plus absolute ``path`` (Path), ``train``/``val``/``test`` (str or list of str),
            ``names`` ({int: str}), ``nc``, ``channels`` and ``yaml_file``.

    Raises:
        FileNotFoundError: When the yaml or the validation images are missing; the message gives the layout.
        SyntaxError: When required keys are missing or inconsistent, as upstream raises.
    """
    if isinstance(dataset, dict):
        data, yaml_file = dict(dataset), dataset.get("yaml_file") or ""
    else:
        yaml_file = find_dataset_yaml(dataset)
        data = yaml_load(yaml_file)
    name = Path(yaml_file).name if yaml_file else "dataset dict"
    _check_keys(data, name)
    root = _resolve_root(data.get("path"), yaml_file)
    data["path"] = root
    for k in SPLIT_KEYS:
        if data.get(k):
            data[k] = _resolve_split(root, data[k])
    data["channels"] = data.get("channels", 3)
    data["yaml_file"] = str(yaml_file)
    val = data["val"] if isinstance(data["val"], list) else [data["val"]]
    missing = next((v for v in val if not Path(v).exists()), None)
    if missing:
        raise FileNotFoundError(missing_data_message(name, missing, root))
    return data
