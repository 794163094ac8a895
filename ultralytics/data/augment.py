"""Image and box transforms of the detection pipeline, following upstream Ultralytics' train and val recipes.

A sample travels through the transforms as a dict: ``img`` (HxWx3 BGR uint8), ``cls`` ((n, 1) float32) and
``bboxes`` ((n, 4) float32 xyxy in pixels of the current ``img``), plus bookkeeping keys (``im_file``,
``ori_shape``, ``resized_shape``, ``ratio_pad``, ``rect_shape``, ``mosaic_border``). Keeping boxes in pixel xyxy
from loading to ``Format`` avoids a box-format state machine; ``Format`` converts them to normalised xywh tensors
at the very end, as upstream's batches hold them.
"""

import math
import random

import cv2
import numpy as np
import torch

from ultralytics.utils.ops import clip_boxes, xyxy2xywh, xyxy2xywhn

PAD_VALUE = 114  # grey used for letterbox borders, mosaic canvas and affine fill, as upstream


class Compose:
    """Apply transforms in order; a list wrapper so a pipeline can be extended after it is built."""

    def __init__(self, transforms):
        """Keep the transforms as a list."""
        self.transforms = list(transforms)

    def __call__(self, labels):
        """Run ``labels`` through every transform."""
        for t in self.transforms:
            labels = t(labels)
        return labels

    def append(self, transform):
        """Add a transform at the end (the dataset appends ``Format`` last)."""
        self.transforms.append(transform)

    def insert(self, index, transform):
        """Add a transform at ``index``."""
        self.transforms.insert(index, transform)

    def __repr__(self):
        """List the transforms, one per line, for logs."""
        return f"{type(self).__name__}({', '.join(map(repr, self.transforms))})"


def _keep(labels, keep):
    """Keep only the boxes and classes selected by ``keep`` (a boolean mask or index array)."""
    labels["cls"] = labels["cls"][keep]
    labels["bboxes"] = labels["bboxes"][keep]
    return labels


def box_areas(boxes):
    """Return the areas of (n, 4) xyxy boxes."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_candidates(box1, box2, wh_thr=2, ar_thr=100, area_thr=0.1, eps=1e-16):
    """Select boxes that survive an augmentation in usable form, as upstream filters them.

    Args:
        box1 (np.ndarray): (4, n) xyxy boxes before the transform (already scaled by the transform's zoom).
        box2 (np.ndarray): (4, n) xyxy boxes after the transform and clipping.
        wh_thr (float): Minimum width and height in pixels.
        ar_thr (float): Maximum aspect ratio.
        area_thr (float): Minimum fraction of the (scaled) original area that must remain visible.
        eps (float): Guard against division by zero.

    Returns:
        (np.ndarray): Boolean mask of the boxes to keep.
    """
    w1, h1 = box1[2] - box1[0], box1[3] - box1[1]
    w2, h2 = box2[2] - box2[0], box2[3] - box2[1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


class BaseMixTransform:
    """Base of transforms that blend the current sample with other samples of the dataset (Mosaic, MixUp)."""

    def __init__(self, dataset, pre_transform=None, p=0.0):
        """Remember where to fetch extra samples and with what probability to apply."""
        self.dataset = dataset
        self.pre_transform = pre_transform
        self.p = p

    def __call__(self, labels):
        """Mix ``labels`` with freshly loaded samples with probability ``p``."""
        if random.uniform(0, 1) > self.p:
            return labels
        others = [self.dataset.get_image_and_label(i) for i in self.get_indexes()]
        if self.pre_transform is not None:
            others = [self.pre_transform(o) for o in others]
        return self._mix_transform(labels, others)

    def get_indexes(self):
        """Return dataset indexes of the samples to mix in."""
        raise NotImplementedError

    def _mix_transform(self, labels, others):
        """Combine ``labels`` with ``others`` and return the new sample."""
        raise NotImplementedError


def _tile_span(center, length, before, limit):
    """Place a tile of ``length`` pixels that ends at (``before``) or starts at ``center`` along one mosaic axis.

    Returns:
        (tuple): (canvas_start, canvas_end, tile_start, tile_end), cropped so the tile stays on a canvas of size
            ``limit``.
    """
    if before:
        a1, a2 = max(center - length, 0), center
        return a1, a2, length - (a2 - a1), length
    a1, a2 = center, min(center + length, limit)
    return a1, a2, 0, a2 - a1


class Mosaic(BaseMixTransform):
    """Four-image mosaic on a 2*imgsz canvas around a random centre, as upstream's default ``mosaic=1.0``.

    The current image fills the top-left quadrant, three random images (from the dataset's recent-image buffer when
    it has one) the others. The output keeps ``mosaic_border`` so ``RandomPerspective`` crops it back to imgsz.
    """

    def __init__(self, dataset, imgsz=640, p=1.0):
        """Set the canvas half-size and the border the following affine transform removes."""
        super().__init__(dataset, p=p)
        self.imgsz = imgsz
        self.border = (-imgsz // 2, -imgsz // 2)  # (h, w) border, negative: the affine step crops it away

    def get_indexes(self):
        """Pick three other images, preferring the buffer of recently loaded (still in memory) ones as upstream."""
        buffer = getattr(self.dataset, "buffer", None)
        if buffer:
            return random.choices(list(buffer), k=3)
        return [random.randint(0, len(self.dataset) - 1) for _ in range(3)]

    def _mix_transform(self, labels, others):
        """Paste the four images around a random centre in [imgsz/2, 1.5*imgsz] and shift their boxes."""
        s = self.imgsz
        yc, xc = (int(random.uniform(-x, 2 * s + x)) for x in self.border)
        tiles = [labels, *others]
        canvas = np.full((2 * s, 2 * s, labels["img"].shape[2]), PAD_VALUE, dtype=np.uint8)
        boxes, classes = [], []
        for i, tile in enumerate(tiles):
            h, w = tile["img"].shape[:2]
            xa1, xa2, xb1, xb2 = _tile_span(xc, w, i % 2 == 0, 2 * s)  # tiles 0 and 2 sit left of the centre
            ya1, ya2, yb1, yb2 = _tile_span(yc, h, i < 2, 2 * s)  # tiles 0 and 1 sit above it
            canvas[ya1:ya2, xa1:xa2] = tile["img"][yb1:yb2, xb1:xb2]
            padw, padh = xa1 - xb1, ya1 - yb1
            boxes.append(tile["bboxes"] + np.array([padw, padh, padw, padh], dtype=np.float32))
            classes.append(tile["cls"])
        bboxes = clip_boxes(np.concatenate(boxes, 0), (2 * s, 2 * s))
        out = {
            "im_file": labels["im_file"],
            "ori_shape": labels["ori_shape"],
            "resized_shape": (2 * s, 2 * s),
            "img": canvas,
            "cls": np.concatenate(classes, 0),
            "bboxes": bboxes,
            "mosaic_border": self.border,
        }
        return _keep(out, box_areas(bboxes) > 0)


class MixUp(BaseMixTransform):
    """Blend the sample with another (itself mosaicked) sample using a Beta(32, 32) weight, as upstream."""

    def get_indexes(self):
        """Pick one random image."""
        return [random.randint(0, len(self.dataset) - 1)]

    def _mix_transform(self, labels, others):
        """Average the two images and keep the boxes of both."""
        other = others[0]
        r = np.random.beta(32.0, 32.0)
        labels["img"] = (labels["img"] * r + other["img"] * (1 - r)).astype(np.uint8)
        labels["cls"] = np.concatenate([labels["cls"], other["cls"]], 0)
        labels["bboxes"] = np.concatenate([labels["bboxes"], other["bboxes"]], 0)
        return labels


class RandomPerspective:
    """Random rotation, scale, shear, translation and perspective, then upstream's box candidate filter.

    After a mosaic the sample carries ``mosaic_border`` (-imgsz/2 on each side) and the output is cropped from the
    2*imgsz canvas back to imgsz. Without one, ``pre_transform`` (a square letterbox) first brings it to imgsz.
    """

    def __init__(
        self, degrees=0.0, translate=0.1, scale=0.5, shear=0.0, perspective=0.0, border=(0, 0), pre_transform=None
    ):
        """Store the ranges: degrees and shear in degrees, translate as a fraction, scale as +/- gain."""
        self.degrees = degrees
        self.translate = translate
        self.scale = scale
        self.shear = shear
        self.perspective = perspective
        self.border = border
        self.pre_transform = pre_transform

    def affine_transform(self, img, size, border):
        """Draw a random 3x3 warp and apply it; return (image, matrix, scale gain)."""
        c = np.eye(3, dtype=np.float32)  # move the image centre to the origin
        c[0, 2], c[1, 2] = -img.shape[1] / 2, -img.shape[0] / 2
        p = np.eye(3, dtype=np.float32)
        p[2, 0] = random.uniform(-self.perspective, self.perspective)
        p[2, 1] = random.uniform(-self.perspective, self.perspective)
        r = np.eye(3, dtype=np.float32)
        angle = random.uniform(-self.degrees, self.degrees)
        s = random.uniform(1 - self.scale, 1 + self.scale)
        r[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=s)
        sh = np.eye(3, dtype=np.float32)
        sh[0, 1] = math.tan(random.uniform(-self.shear, self.shear) * math.pi / 180)
        sh[1, 0] = math.tan(random.uniform(-self.shear, self.shear) * math.pi / 180)
        t = np.eye(3, dtype=np.float32)  # move the origin to a random point near the output centre
        t[0, 2] = random.uniform(0.5 - self.translate, 0.5 + self.translate) * size[0]
        t[1, 2] = random.uniform(0.5 - self.translate, 0.5 + self.translate) * size[1]
        m = t @ sh @ r @ p @ c
        if border[0] or border[1] or (m != np.eye(3)).any():
            fill = (PAD_VALUE,) * 3
            if self.perspective:
                img = cv2.warpPerspective(img, m, dsize=size, borderValue=fill)
            else:
                img = cv2.warpAffine(img, m[:2], dsize=size, borderValue=fill)
        return img, m, s

    def apply_bboxes(self, bboxes, m):
        """Warp the four corners of each xyxy box and return the boxes that enclose them."""
        n = len(bboxes)
        if n == 0:
            return bboxes
        xy = np.ones((n * 4, 3), dtype=bboxes.dtype)
        xy[:, :2] = bboxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)  # x1y1, x2y2, x1y2, x2y1
        xy = xy @ m.T
        xy = (xy[:, :2] / xy[:, 2:3] if self.perspective else xy[:, :2]).reshape(n, 8)
        x, y = xy[:, [0, 2, 4, 6]], xy[:, [1, 3, 5, 7]]
        return np.stack((x.min(1), y.min(1), x.max(1), y.max(1)), 1).astype(bboxes.dtype)

    def __call__(self, labels):
        """Warp image and boxes, clip the boxes and drop those the warp made unusable."""
        if self.pre_transform is not None and "mosaic_border" not in labels:
            labels = self.pre_transform(labels)
        labels.pop("ratio_pad", None)  # the geometry no longer maps back to the original image
        img = labels["img"]
        border = labels.pop("mosaic_border", self.border)
        size = (img.shape[1] + border[1] * 2, img.shape[0] + border[0] * 2)  # output (w, h)
        img, m, s = self.affine_transform(img, size, border)
        old = labels["bboxes"]
        new = clip_boxes(self.apply_bboxes(old, m), (size[1], size[0]))
        keep = box_candidates(box1=old.T * s, box2=new.T, area_thr=0.10)
        labels.update(img=img, bboxes=new, resized_shape=img.shape[:2])
        return _keep(labels, keep)


class RandomHSV:
    """Random hue, saturation and value gains applied through lookup tables, as upstream's hsv_h/hsv_s/hsv_v."""

    def __init__(self, hgain=0.5, sgain=0.5, vgain=0.5):
        """Store the maximum gains (fractions of the full range)."""
        self.hgain = hgain
        self.sgain = sgain
        self.vgain = vgain

    def __call__(self, labels):
        """Shift hue additively and scale saturation and value, leaving grey pixels (saturation 0) grey."""
        img = labels["img"]
        if img.shape[-1] != 3 or not (self.hgain or self.sgain or self.vgain):
            return labels
        r = np.random.uniform(-1, 1, 3) * [self.hgain, self.sgain, self.vgain]
        x = np.arange(0, 256, dtype=r.dtype)
        lut_hue = ((x + r[0] * 180) % 180).astype(np.uint8)
        lut_sat = np.clip(x * (r[1] + 1), 0, 255).astype(np.uint8)
        lut_val = np.clip(x * (r[2] + 1), 0, 255).astype(np.uint8)
        lut_sat[0] = 0  # keep pure white and other greys from taking on a colour
        hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
        hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
        labels["img"] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)  # a new array: never write into a cached image
        return labels


class RandomFlip:
    """Mirror image and boxes left-right (``fliplr``) or top-bottom (``flipud``) with probability ``p``."""

    def __init__(self, p=0.5, direction="horizontal"):
        """Check the direction and probability."""
        if direction not in {"horizontal", "vertical"}:
            raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability must be in [0, 1], got {p}")
        self.p = p
        self.direction = direction

    def __call__(self, labels):
        """Flip with probability ``p``."""
        if random.random() >= self.p:
            return labels
        img, b = labels["img"], labels["bboxes"].copy()
        h, w = img.shape[:2]
        if self.direction == "horizontal":
            labels["img"] = np.ascontiguousarray(img[:, ::-1])
            b[:, [0, 2]] = w - labels["bboxes"][:, [2, 0]]
        else:
            labels["img"] = np.ascontiguousarray(img[::-1])
            b[:, [1, 3]] = h - labels["bboxes"][:, [3, 1]]
        labels["bboxes"] = b
        return labels


class LetterBox:
    """Resize keeping the aspect ratio, then pad to ``new_shape`` (or the sample's ``rect_shape``) with grey.

    Args:
        new_shape (int | tuple): Target (h, w).
        auto (bool): Pad only up to the next multiple of ``stride`` (minimum rectangle) instead of the full shape.
        scale_fill (bool): Stretch to ``new_shape`` without padding.
        scaleup (bool): Allow enlarging; validation disables it so small images are not upsampled.
        center (bool): Split the padding between both sides; otherwise pad right and bottom only.
        stride (int): Stride ``auto`` pads to.
        padding_value (int): Border grey level.
        interpolation (int): cv2 interpolation flag for the resize.
    """

    def __init__(
        self,
        new_shape=(640, 640),
        auto=False,
        scale_fill=False,
        scaleup=True,
        center=True,
        stride=32,
        padding_value=PAD_VALUE,
        interpolation=cv2.INTER_LINEAR,
    ):
        """Store the letterbox settings."""
        self.new_shape = new_shape
        self.auto = auto
        self.scale_fill = scale_fill
        self.scaleup = scaleup
        self.center = center
        self.stride = stride
        self.padding_value = padding_value
        self.interpolation = interpolation

    def _geometry(self, shape, new_shape):
        """Return (resized (w, h), ratio (w, h), (left, top, right, bottom) padding) for an image of ``shape``."""
        r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
        if not self.scaleup:
            r = min(r, 1.0)
        ratio = r, r
        new_unpad = int(round(shape[1] * r)), int(round(shape[0] * r))
        dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
        if self.auto:
            dw, dh = np.mod(dw, self.stride), np.mod(dh, self.stride)
        elif self.scale_fill:
            dw, dh = 0.0, 0.0
            new_unpad = (new_shape[1], new_shape[0])
            ratio = new_shape[1] / shape[1], new_shape[0] / shape[0]
        if self.center:
            dw, dh = dw / 2, dh / 2
        top, bottom = (int(round(dh - 0.1)) if self.center else 0), int(round(dh + 0.1))
        left, right = (int(round(dw - 0.1)) if self.center else 0), int(round(dw + 0.1))
        return new_unpad, ratio, (left, top, right, bottom)

    def __call__(self, labels=None, image=None):
        """Letterbox a sample dict (boxes follow) or, given only ``image``, return the letterboxed image."""
        labels = {} if labels is None else labels
        img = labels.get("img") if image is None else image
        shape = img.shape[:2]
        new_shape = labels.pop("rect_shape", self.new_shape)
        if isinstance(new_shape, int):
            new_shape = (new_shape, new_shape)
        new_shape = (int(new_shape[0]), int(new_shape[1]))
        new_unpad, ratio, (left, top, right, bottom) = self._geometry(shape, new_shape)
        if shape[::-1] != new_unpad:
            img = cv2.resize(img, new_unpad, interpolation=self.interpolation)
        img = cv2.copyMakeBorder(
            img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(self.padding_value,) * 3
        )  # always a new array, so later in-place steps never touch a cached image
        if not labels:
            return img
        if "ratio_pad" in labels:  # compose with the load-time resize so scale_boxes maps back to the original
            rh, rw = labels["ratio_pad"]
            labels["ratio_pad"] = ((rh * ratio[1], rw * ratio[0]), (left, top))
        if "bboxes" in labels:
            b = labels["bboxes"] * np.array([ratio[0], ratio[1], ratio[0], ratio[1]], dtype=np.float32)
            labels["bboxes"] = b + np.array([left, top, left, top], dtype=np.float32)
        labels["img"] = img
        labels["resized_shape"] = new_shape
        return labels


class Format:
    """Turn a sample into upstream's batch item: CHW RGB uint8 image tensor, normalised xywh boxes, batch_idx.

    Args:
        normalize (bool): Divide box coordinates by the image width and height.
        batch_idx (bool): Add a zero ``batch_idx`` per box; ``collate_fn`` offsets it per image.
        bgr (float): Probability of keeping BGR channel order (upstream's ``bgr`` hyperparameter, 0 by default).
    """

    def __init__(self, normalize=True, batch_idx=True, bgr=0.0):
        """Store the options."""
        self.normalize = normalize
        self.batch_idx = batch_idx
        self.bgr = bgr

    def _format_img(self, img):
        """HWC BGR numpy to contiguous CHW RGB tensor (BGR kept with probability ``bgr``)."""
        if img.ndim < 3:
            img = img[..., None]
        img = img.transpose(2, 0, 1)
        if img.shape[0] == 3 and random.uniform(0, 1) > self.bgr:
            img = img[::-1]
        return torch.from_numpy(np.ascontiguousarray(img))

    def __call__(self, labels):
        """Convert image, classes and boxes to tensors."""
        img = labels.pop("img")
        h, w = img.shape[:2]
        cls = np.asarray(labels.pop("cls"), dtype=np.float32).reshape(-1, 1)
        boxes = np.asarray(labels.pop("bboxes"), dtype=np.float32).reshape(-1, 4)
        xywh = xyxy2xywhn(boxes, w, h) if self.normalize else xyxy2xywh(boxes)
        labels["img"] = self._format_img(img)
        labels["cls"] = torch.from_numpy(np.ascontiguousarray(cls))
        labels["bboxes"] = torch.from_numpy(np.ascontiguousarray(xywh, dtype=np.float32))
        if self.batch_idx:
            labels["batch_idx"] = torch.zeros(len(cls))
        return labels


def v8_transforms(dataset, imgsz, hyp, stretch=False):
    """Build upstream's training pipeline: Mosaic -> RandomPerspective -> MixUp -> HSV -> flips.

    Args:
        dataset: The dataset to draw mosaic/mixup partners from (needs ``get_image_and_label`` and ``__len__``).
        imgsz (int): Training image size.
        hyp (SimpleNamespace): Upstream default.yaml keys (mosaic, mixup, degrees, translate, scale, shear,
            perspective, hsv_h, hsv_s, hsv_v, flipud, fliplr).
        stretch (bool): Skip the square letterbox before the affine step (images already imgsz x imgsz).
    """
    mosaic = Mosaic(dataset, imgsz=imgsz, p=hyp.mosaic)
    affine = RandomPerspective(
        degrees=hyp.degrees,
        translate=hyp.translate,
        scale=hyp.scale,
        shear=hyp.shear,
        perspective=hyp.perspective,
        pre_transform=None if stretch else LetterBox(new_shape=(imgsz, imgsz)),
    )
    pre_transform = Compose([mosaic, affine])
    return Compose(
        [
            pre_transform,
            MixUp(dataset, pre_transform=pre_transform, p=hyp.mixup),
            RandomHSV(hgain=hyp.hsv_h, sgain=hyp.hsv_s, vgain=hyp.hsv_v),
            RandomFlip(direction="vertical", p=hyp.flipud),
            RandomFlip(direction="horizontal", p=hyp.fliplr),
        ]
    )
