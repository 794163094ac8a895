"""The YOLO detection dataset: file discovery, verified label cache, image loading and the transform pipeline.

Labels are scanned once, verified (``verify_image_label``) and stored in ``<labels dir>.cache`` beside the label
folder. The cache is an ``.npz`` archive of plain numeric and string arrays read with ``allow_pickle=False``, so
loading a cache can never execute code; upstream's pickled caches are simply not recognised and get rebuilt.
"""

import glob
import math
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ultralytics.data.augment import Compose, Format, LetterBox, v8_transforms
from ultralytics.data.utils import (
    FORMATS_HELP,
    IMG_FORMATS,
    LAYOUT_HELP,
    get_hash,
    img2label_paths,
    is_dir_writeable,
    verify_image_label,
)
from ultralytics.utils import LOGGER, NUM_THREADS
from ultralytics.utils.ops import xywhn2xyxy

CACHE_VERSION = "fork-det-1"  # bump when the cache layout or the verification rules change
DEFAULT_HYP = {
    "mosaic": 1.0,
    "mixup": 0.0,
    "cutmix": 0.0,
    "copy_paste": 0.0,
    "degrees": 0.0,
    "translate": 0.1,
    "scale": 0.5,
    "shear": 0.0,
    "perspective": 0.0,
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "flipud": 0.0,
    "fliplr": 0.5,
    "bgr": 0.0,
}  # upstream default.yaml values of the keys the data pipeline reads
CACHE_CHOICES = {True: "ram", "ram": "ram", "True": "ram", "true": "ram", "disk": "disk"}


def make_hyp(hyp=None):
    """Return a fresh namespace of augmentation settings: upstream defaults overlaid with ``hyp`` (dict/namespace).

    A copy is always made, so the dataset can zero mosaic for rect or close_mosaic without touching the caller's
    config object.
    """
    values = dict(DEFAULT_HYP)
    if hyp is not None:
        src = hyp if isinstance(hyp, dict) else vars(hyp)
        values.update({k: v for k, v in src.items() if v is not None or k not in DEFAULT_HYP})
    return SimpleNamespace(**values)


def imread(file):
    """Read an image as BGR uint8 like cv2.imread (EXIF orientation applied), but also from non-ASCII paths."""
    return cv2.imdecode(np.fromfile(file, np.uint8), cv2.IMREAD_COLOR)


def _txt_entries(txt, root=None):
    """Read image paths from a split ``.txt`` file; relative entries resolve against the file's folder.

    When an entry does not exist there but does under the dataset ``root``, the root wins, so a list kept in a
    sub-folder may still name images relative to the dataset root.
    """
    parent = txt.parent
    out = []
    for line in txt.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        p = Path(line)
        if not p.is_absolute():
            p = parent / line
            if root is not None and not p.exists() and (Path(root) / line).exists():
                p = Path(root) / line
        out.append(os.path.normpath(p))
    return out


def get_img_files(img_path, prefix="", fraction=1.0, root=None):
    """List the image files of a split given as a folder, a ``.txt`` list of images, or a list of either.

    Raises:
        FileNotFoundError: When a folder or list does not exist or holds no images; the message gives the layout.
    """
    files = []
    for p in img_path if isinstance(img_path, (list, tuple)) else [img_path]:
        p = Path(p)
        if p.is_dir():
            files += glob.glob(str(p / "**" / "*.*"), recursive=True)
        elif p.is_file():
            files += _txt_entries(p, root)
        else:
            raise FileNotFoundError(
                f"{prefix}{p} does not exist.\n{LAYOUT_HELP}\nThis fork never downloads datasets: put the data there."
            )
    im_files = sorted(f for f in files if f.rpartition(".")[-1].lower() in IMG_FORMATS)
    if not im_files:
        raise FileNotFoundError(f"{prefix}No images found in {img_path}. {FORMATS_HELP}\n{LAYOUT_HELP}")
    if fraction < 1:
        im_files = im_files[: round(len(im_files) * fraction)]
    return im_files


def load_label_cache(path):
    """Load a label cache written by ``save_label_cache``; return None when absent, foreign or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        counts = d["counts"].astype(int)
        return {
            "version": str(d["version"]),
            "hash": str(d["hash"]),
            "im_files": d["im_files"].tolist(),
            "shapes": d["shapes"].astype(int),
            "labels": np.split(d["labels"].astype(np.float32), np.cumsum(counts)[:-1]) if len(counts) else [],
            "msgs": d["msgs"].tolist(),
            "stats": d["stats"].astype(int).tolist(),
        }
    except Exception:  # missing file, upstream's pickled cache, truncated write: all mean "scan again"
        return None


def save_label_cache(path, cache, prefix=""):
    """Write a label cache atomically (temp file, then rename); a read-only folder only costs a warning.

    Returns:
        (bool): Whether the cache was written.
    """
    path = Path(path)
    read_only_file = path.exists() and not path.stat().st_mode & 0o222
    if not is_dir_writeable(path.parent) or read_only_file:
        LOGGER.warning(f"{prefix}WARNING ⚠️ Cache directory {path.parent} is not writeable, cache not saved.")
        return False
    labels = cache["labels"]
    arrays = {
        "version": np.array(cache["version"]),
        "hash": np.array(cache["hash"]),
        "im_files": np.array(cache["im_files"], dtype=str),
        "shapes": np.array(cache["shapes"], dtype=np.int64).reshape(-1, 2),
        "counts": np.array([len(x) for x in labels], dtype=np.int64),
        "labels": np.concatenate(labels, 0).astype(np.float32) if labels else np.zeros((0, 5), np.float32),
        "msgs": np.array(cache["msgs"], dtype=str),
        "stats": np.array(cache["stats"], dtype=np.int64),
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        LOGGER.warning(f"{prefix}WARNING ⚠️ Cache directory {path.parent} is not writeable, cache not saved ({e}).")
        return False
    LOGGER.info(f"{prefix}New cache created: {path}")
    return True


def _available_memory():
    """Return the bytes of memory available (Linux /proc/meminfo), or None where that cannot be told."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class YOLODataset(Dataset):
    """Upstream-compatible YOLO detection dataset.

    Args:
        img_path (str | list): Image folder(s) or ``.txt`` image list(s) of the split.
        imgsz (int): Target image size; images are loaded with their long side resized to it.
        augment (bool): Use the training pipeline (mosaic, affine, HSV, flips) instead of the val letterbox.
        hyp (dict | SimpleNamespace): Augmentation settings with upstream default.yaml keys.
        rect (bool): Rectangular batches (sorted by aspect ratio, one padded shape per batch); disables mosaic.
        batch_size (int): Batch size the rectangular shapes are computed for.
        stride (int): Model stride the rect shapes are multiples of.
        pad (float): Extra padding of rect shapes, in strides (upstream: 0.0 train, 0.5 val).
        single_cls (bool): Treat every object as class 0.
        classes (list, optional): Keep only these class ids.
        fraction (float): Use only this leading fraction of the images.
        cache (bool | str): ``'ram'`` / True keeps the loaded images in memory; ``'disk'`` stores each decoded
            image as a ``.npy`` beside it (when that folder may be written) so later epochs skip JPEG decoding.
        data (dict, optional): The ``check_det_dataset`` dict; its ``names`` bound the class ids.
        prefix (str): Log prefix such as ``'train: '``.
        task (str): Only ``'detect'`` is provided by this pipeline.
    """

    def __init__(
        self,
        img_path,
        imgsz=640,
        augment=True,
        hyp=None,
        rect=False,
        batch_size=16,
        stride=32,
        pad=0.5,
        single_cls=False,
        classes=None,
        fraction=1.0,
        cache=False,
        data=None,
        prefix="",
        task="detect",
    ):
        """Scan the split, verify its labels, set up rect shapes and caches, and build the transforms."""
        super().__init__()
        self.img_path, self.imgsz, self.augment, self.rect = img_path, imgsz, augment, rect
        self.batch_size, self.stride, self.pad, self.prefix = batch_size, stride, pad, prefix
        self.single_cls, self.data, self.task = single_cls, data or {}, task
        self.hyp = make_hyp(hyp)
        self.im_files = get_img_files(img_path, prefix, fraction, root=self.data.get("path"))
        self.labels = self.get_labels()
        self.update_labels(classes, single_cls)
        self.ni = len(self.labels)
        if self.rect:
            self.set_rectangle()
        self.buffer = []  # indexes of recently loaded images, which mosaic prefers as partners
        self.max_buffer_length = min(self.ni, self.batch_size * 8, 1000) if self.augment else 0
        self.ims, self.im_hw0, self.im_hw = [None] * self.ni, [None] * self.ni, [None] * self.ni
        self.cache = self._choose_cache(cache)
        if self.cache == "ram" and not self.check_cache_ram():
            self.cache = None
        if self.cache:
            self.cache_images()
        self.transforms = self.build_transforms(self.hyp)

    # ----------------------------------------------------------------------------------------------- labels
    @property
    def num_classes(self):
        """Number of classes the labels are checked against, or None when no dataset dict was given."""
        names = self.data.get("names")
        return len(names) if names else None

    def cache_labels(self, data_hash):
        """Verify every (image, label) pair in threads and return the cache dict (not yet saved)."""
        nc, single = self.num_classes, self.single_cls
        args = [(im, lb, self.prefix, nc, single) for im, lb in zip(self.im_files, self.label_files)]
        with ThreadPoolExecutor(NUM_THREADS) as pool:
            results = list(pool.map(verify_image_label, args))
        kept = [r for r in results if r[0] is not None]
        nm, nf, ne, nc = (sum(r[i] for r in results) for i in (3, 4, 5, 6))
        return {
            "version": CACHE_VERSION,
            "hash": data_hash,
            "im_files": [r[0] for r in kept],
            "shapes": np.array([r[2] for r in kept], dtype=np.int64).reshape(-1, 2),
            "labels": [r[1] for r in kept],
            "msgs": [r[7] for r in results if r[7]],
            "stats": [nf, nm, ne, nc, len(results)],
        }

    def get_labels(self):
        """Load the label cache (rescanning when files changed) and return one label dict per usable image."""
        self.label_files = img2label_paths(self.im_files)
        cache_path = Path(self.label_files[0]).parent.with_suffix(".cache")
        cache = load_label_cache(cache_path)
        # the verdicts depend on the class count and single_cls too, so a change of either rescans
        data_hash = f"{get_hash(self.label_files + self.im_files)}:{self.num_classes}:{int(self.single_cls)}"
        fresh = not cache or cache["version"] != CACHE_VERSION or cache["hash"] != data_hash
        if fresh:
            cache = self.cache_labels(data_hash)
        nf, nm, ne, nc, _ = cache["stats"]
        where = cache_path.parent / cache_path.stem if fresh else cache_path
        LOGGER.info(f"{self.prefix}Scanning {where}... {nf} images, {nm + ne} backgrounds, {nc} corrupt")
        for msg in cache["msgs"]:
            LOGGER.warning(msg)
        if nf == 0:
            LOGGER.warning(f"{self.prefix}WARNING ⚠️ No labels found in {cache_path}.\n{LAYOUT_HELP}")
        if fresh:
            save_label_cache(cache_path, cache, self.prefix)
        labels = [
            {"im_file": f, "shape": tuple(int(v) for v in s), "cls": lb[:, 0:1].copy(), "bboxes": lb[:, 1:].copy()}
            for f, s, lb in zip(cache["im_files"], cache["shapes"], cache["labels"])
        ]
        if not labels:
            raise RuntimeError(
                f"{self.prefix}No valid images found in {cache_path}. Images with incorrectly formatted labels are "
                f"ignored.\n{LAYOUT_HELP}"
            )
        for lb in labels:
            lb.update(normalized=True, bbox_format="xywh")
        self.im_files = [lb["im_file"] for lb in labels]
        self.label_files = img2label_paths(self.im_files)
        return labels

    def update_labels(self, include_class=None, single_cls=False):
        """Keep only ``include_class`` objects and/or collapse every class to 0 for single-class training."""
        keep_ids = None if include_class is None else np.array(include_class, dtype=np.float32).reshape(1, -1)
        for lb in self.labels:
            if keep_ids is not None:
                j = (lb["cls"] == keep_ids).any(1)
                lb["cls"], lb["bboxes"] = lb["cls"][j], lb["bboxes"][j]
            if single_cls:
                lb["cls"][:, 0] = 0

    # ------------------------------------------------------------------------------------------------ images
    def set_rectangle(self):
        """Sort images by aspect ratio and give each batch the smallest stride-multiple shape that fits it all."""
        bi = np.floor(np.arange(self.ni) / self.batch_size).astype(int)
        nb = bi[-1] + 1
        s = np.array([lb["shape"] for lb in self.labels], dtype=np.float64)  # (h, w)
        ar = s[:, 0] / s[:, 1]
        order = ar.argsort()
        self.im_files = [self.im_files[i] for i in order]
        self.label_files = [self.label_files[i] for i in order]
        self.labels = [self.labels[i] for i in order]
        ar = ar[order]
        shapes = [[1, 1]] * nb
        for i in range(nb):
            ari = ar[bi == i]
            mini, maxi = ari.min(), ari.max()
            if maxi < 1:
                shapes[i] = [maxi, 1]
            elif mini > 1:
                shapes[i] = [1, 1 / mini]
        self.batch_shapes = np.ceil(np.array(shapes) * self.imgsz / self.stride + self.pad).astype(int) * self.stride
        self.batch = bi

    def load_image(self, i, rect_mode=True):
        """Load image ``i`` (BGR) resized so its long side is imgsz; return (img, (h0, w0), (h, w)).

        With augmentation the image stays in a small buffer so mosaic can reuse it without reading the file again.
        """
        if self.ims[i] is not None:
            return self.ims[i], self.im_hw0[i], self.im_hw[i]
        im, hw0, hw = self._read_resized(i, rect_mode)
        if self.augment:
            self._remember(i, im, hw0)
        return im, hw0, hw

    def _read_resized(self, i, rect_mode=True):
        """Read image ``i`` from disk and resize it: long side to imgsz (rect_mode) or stretched to a square.

        Interpolation is INTER_LINEAR in every mode, as upstream 8.x does (older releases used INTER_AREA for
        downscaling without augmentation).
        """
        im = self._read_raw(i)
        h0, w0 = im.shape[:2]
        if rect_mode:
            r = self.imgsz / max(h0, w0)
            if r != 1:
                w, h = min(math.ceil(w0 * r), self.imgsz), min(math.ceil(h0 * r), self.imgsz)
                im = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
        elif not h0 == w0 == self.imgsz:
            im = cv2.resize(im, (self.imgsz, self.imgsz), interpolation=cv2.INTER_LINEAR)
        return im, (h0, w0), im.shape[:2]

    def _remember(self, i, im, hw0):
        """Keep a loaded image in the mosaic buffer, dropping the oldest beyond ``max_buffer_length``."""
        self.ims[i], self.im_hw0[i], self.im_hw[i] = im, hw0, im.shape[:2]
        self.buffer.append(i)
        if 1 < len(self.buffer) >= self.max_buffer_length:
            j = self.buffer.pop(0)
            if self.cache != "ram":
                self.ims[j], self.im_hw0[j], self.im_hw[j] = None, None, None

    def restore_buffer(self, indices):
        """Reload the mosaic buffer of a resumed run (same images in memory, same order), so resume is exact."""
        for i in indices:
            if self.ims[i] is None:
                self.ims[i], self.im_hw0[i], self.im_hw[i] = self._read_resized(i)
        self.buffer[:] = list(indices)

    def _choose_cache(self, cache):
        """Normalise the ``cache`` argument to 'ram', 'disk' or None, warning about values it does not know."""
        if cache in (None, False, "False", "false", ""):
            return None
        if cache in CACHE_CHOICES:
            return CACHE_CHOICES[cache]
        LOGGER.warning(f"{self.prefix}WARNING ⚠️ cache={cache!r} is not supported (use 'ram' or 'disk'), not caching.")
        return None

    def check_cache_ram(self, safety_margin=0.5):
        """Estimate the memory the resized images need and refuse RAM caching when it does not fit."""
        n = min(self.ni, 30)
        b = 0.0
        for f in random.sample(self.im_files, n):
            im = imread(f)
            if im is not None:
                b += im.nbytes * (self.imgsz / max(im.shape[:2])) ** 2
        need = b * self.ni / max(n, 1) * (1 + safety_margin)
        avail = _available_memory()
        if avail is not None and need > avail:
            LOGGER.warning(
                f"{self.prefix}WARNING ⚠️ {need / 2**30:.1f}GB RAM needed to cache images, "
                f"{avail / 2**30:.1f}GB available, not caching images."
            )
            return False
        return True

    def _npy_file(self, i):
        """Path of the disk-cache copy of image ``i``."""
        return Path(self.im_files[i]).with_suffix(".npy")

    def _read_raw(self, i):
        """Read image ``i`` at full size, from its ``.npy`` copy under cache='disk' when one is there."""
        f = self.im_files[i]
        if self.cache == "disk":
            npy = self._npy_file(i)
            if npy.exists():
                try:
                    return np.load(npy, allow_pickle=False)
                except Exception as e:
                    LOGGER.warning(f"{self.prefix}WARNING ⚠️ Removing corrupt *.npy image file {npy} due to: {e}")
                    npy.unlink(missing_ok=True)
        im = imread(f)
        if im is None:
            raise FileNotFoundError(f"Image Not Found {f}")
        return im

    def _save_npy(self, i):
        """Write the ``.npy`` copy of image ``i`` atomically if it is missing; return its size in bytes."""
        npy = self._npy_file(i)
        if not npy.exists():
            tmp = npy.with_name(f"{npy.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as f:
                    np.save(f, self._read_raw(i), allow_pickle=False)
                os.replace(tmp, npy)
            finally:
                tmp.unlink(missing_ok=True)
        return npy.stat().st_size

    def cache_images(self):
        """Load every image into RAM, or write its ``.npy`` copy for cache='disk', in threads."""
        if self.cache == "disk" and not is_dir_writeable(self._npy_file(0).parent):
            LOGGER.warning(f"{self.prefix}WARNING ⚠️ {self._npy_file(0).parent} is not writeable, images not cached.")
            self.cache = None
            return
        total = 0
        with ThreadPoolExecutor(NUM_THREADS) as pool:
            if self.cache == "disk":
                try:
                    total = sum(pool.map(self._save_npy, range(self.ni)))
                except OSError as e:  # disk full or permissions: reading the originals still works
                    LOGGER.warning(f"{self.prefix}WARNING ⚠️ disk caching failed ({e}), images not cached.")
                    self.cache = None
                    return
            else:
                for i, (im, hw0, hw) in enumerate(pool.map(self._read_resized, range(self.ni))):
                    self.ims[i], self.im_hw0[i], self.im_hw[i] = im, hw0, hw
                    total += im.nbytes
        LOGGER.info(f"{self.prefix}Caching images ({total / 2**30:.1f}GB {self.cache.upper()})")

    # ---------------------------------------------------------------------------------------------- samples
    def get_image_and_label(self, index):
        """Return the raw sample for ``index``: loaded image plus boxes in pixel xyxy of that image."""
        lb = self.labels[index]
        img, (h0, w0), (h, w) = self.load_image(index)
        sample = {
            "im_file": lb["im_file"],
            "img": img,
            "cls": lb["cls"].copy(),
            "bboxes": xywhn2xyxy(lb["bboxes"], w, h).astype(np.float32),
            "ori_shape": (h0, w0),
            "resized_shape": (h, w),
            "ratio_pad": (h / h0, w / w0),
        }
        if self.rect:
            sample["rect_shape"] = self.batch_shapes[self.batch[index]]
        return sample

    def __getitem__(self, index):
        """Return the transformed sample ``index`` (see ``Format`` for the keys)."""
        return self.transforms(self.get_image_and_label(index))

    def __len__(self):
        """Number of usable images."""
        return len(self.labels)

    def build_transforms(self, hyp=None):
        """Build the train pipeline (mosaic unless rect) or the val letterbox, each followed by ``Format``."""
        hyp = make_hyp(self.hyp if hyp is None else hyp)
        if self.augment:
            if self.rect:  # mosaic and mixup would break the per-batch shapes
                hyp.mosaic = hyp.mixup = 0.0
            transforms = v8_transforms(self, self.imgsz, hyp)
        else:
            transforms = Compose([LetterBox(new_shape=(self.imgsz, self.imgsz), scaleup=False)])
        transforms.append(Format(normalize=True, batch_idx=True, bgr=hyp.bgr if self.augment else 0.0))
        return transforms

    def close_mosaic(self, hyp=None):
        """Switch the training pipeline to plain letterbox + affine (no mosaic/mixup) for the final epochs.

        Workers of a persistent DataLoader hold their own copy of the dataset, so call the loader's ``reset()``
        afterwards (``build_dataloader`` returns one that has it).
        """
        hyp = make_hyp(self.hyp if hyp is None else hyp)
        hyp.mosaic = hyp.mixup = hyp.cutmix = hyp.copy_paste = 0.0
        self.hyp = hyp
        self.transforms = self.build_transforms(hyp)

    @staticmethod
    def collate_fn(batch):
        """Stack images, concatenate boxes and classes, and offset ``batch_idx`` by each box's image position.

        Other keys (``im_file``, ``ori_shape``, ``resized_shape``, ``ratio_pad``) become per-image tuples.
        """
        out = {}
        for k in batch[0]:
            values = [b[k] for b in batch]
            if k == "img":
                out[k] = torch.stack(values, 0)
            elif k in {"cls", "bboxes"}:
                out[k] = torch.cat(values, 0)
            elif k == "batch_idx":
                out[k] = torch.cat([v + i for i, v in enumerate(values)], 0)
            else:
                out[k] = tuple(values)
        return out
