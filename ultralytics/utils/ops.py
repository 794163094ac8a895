"""Box format conversions and scaling shared by the head, the loss, the data pipeline and the validator.

Every function accepts either a ``torch.Tensor`` or a ``numpy.ndarray`` of shape (..., 4) and returns the same
type, so augmentations (numpy) and the model side (torch) agree on one definition of each format.
"""

import numpy as np
import torch


def _empty_like(x):
    return x.clone() if isinstance(x, torch.Tensor) else np.copy(x)


def xywh2xyxy(x):
    """Convert centre-x, centre-y, width, height boxes to corner (x1, y1, x2, y2) boxes."""
    y = _empty_like(x)
    half_w, half_h = x[..., 2] / 2, x[..., 3] / 2
    y[..., 0] = x[..., 0] - half_w
    y[..., 1] = x[..., 1] - half_h
    y[..., 2] = x[..., 0] + half_w
    y[..., 3] = x[..., 1] + half_h
    return y


def xyxy2xywh(x):
    """Convert corner (x1, y1, x2, y2) boxes to centre-x, centre-y, width, height boxes."""
    y = _empty_like(x)
    y[..., 0] = (x[..., 0] + x[..., 2]) / 2
    y[..., 1] = (x[..., 1] + x[..., 3]) / 2
    y[..., 2] = x[..., 2] - x[..., 0]
    y[..., 3] = x[..., 3] - x[..., 1]
    return y


def xywhn2xyxy(x, w=640, h=640, padw=0, padh=0):
    """Convert normalised xywh boxes to pixel xyxy boxes in an image of size (w, h) placed at (padw, padh)."""
    y = _empty_like(x)
    y[..., 0] = w * (x[..., 0] - x[..., 2] / 2) + padw
    y[..., 1] = h * (x[..., 1] - x[..., 3] / 2) + padh
    y[..., 2] = w * (x[..., 0] + x[..., 2] / 2) + padw
    y[..., 3] = h * (x[..., 1] + x[..., 3] / 2) + padh
    return y


def xyxy2xywhn(x, w=640, h=640, clip=False, eps=0.0):
    """Convert pixel xyxy boxes to normalised xywh boxes, optionally clipping to the image first."""
    if clip:
        x = clip_boxes(_empty_like(x), (h - eps, w - eps))
    y = xyxy2xywh(x)
    y[..., [0, 2]] /= w
    y[..., [1, 3]] /= h
    return y


def clip_boxes(boxes, shape):
    """Clip xyxy boxes in place to an image of ``shape`` (h, w) and return them."""
    h, w = shape[:2]
    if isinstance(boxes, torch.Tensor):
        boxes[..., 0].clamp_(0, w)
        boxes[..., 1].clamp_(0, h)
        boxes[..., 2].clamp_(0, w)
        boxes[..., 3].clamp_(0, h)
    else:
        boxes[..., [0, 2]] = boxes[..., [0, 2]].clip(0, w)
        boxes[..., [1, 3]] = boxes[..., [1, 3]].clip(0, h)
    return boxes


def scale_boxes(img1_shape, boxes, img0_shape, ratio_pad=None):
    """Map xyxy boxes from a letterboxed image of ``img1_shape`` back to the original ``img0_shape`` (h, w).

    The letterbox rounds each resized side to whole pixels, so the true scale differs slightly per axis (517 px at
    gain 1.238 becomes 640, not 640.05); undoing it with one gain per axis, as upstream 8.4 does, keeps boxes exact
    instead of up to ~1 px off.

    Args:
        img1_shape (tuple): (h, w) of the network input the boxes refer to.
        boxes (torch.Tensor | np.ndarray): (N, 4) xyxy boxes, modified in place.
        img0_shape (tuple): (h, w) of the original image.
        ratio_pad (tuple, optional): ((gain_h, gain_w), (padw, padh)) as recorded by the letterbox (a single gain is
            used for both axes); computed from the shapes when absent.
    """
    h0, w0 = img0_shape[:2]
    if ratio_pad is None:
        gain = min(img1_shape[0] / h0, img1_shape[1] / w0)
        new_h, new_w = max(round(h0 * gain), 1), max(round(w0 * gain), 1)
        gain_h, gain_w = new_h / h0, new_w / w0
        pad_w = round((img1_shape[1] - new_w) / 2 - 0.1)
        pad_h = round((img1_shape[0] - new_h) / 2 - 0.1)
    else:
        gains, (pad_w, pad_h) = ratio_pad
        gains = gains if isinstance(gains, (tuple, list)) else (gains, gains)
        gain_h, gain_w = (gains[0], gains[-1])
    boxes[..., [0, 2]] -= pad_w
    boxes[..., [1, 3]] -= pad_h
    boxes[..., [0, 2]] /= gain_w
    boxes[..., [1, 3]] /= gain_h
    return clip_boxes(boxes, img0_shape)


def make_divisible(x, divisor):
    """Round ``x`` up to the nearest multiple of ``divisor`` (channel counts are kept multiples of 8)."""
    if isinstance(divisor, torch.Tensor):
        divisor = int(divisor.max())
    return int(np.ceil(x / divisor) * divisor)
