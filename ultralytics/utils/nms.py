"""Non-maximum suppression for the detection head's inference output, with upstream Ultralytics 8.4 semantics."""

import time

import torch
import torchvision

from ultralytics.utils import LOGGER
from ultralytics.utils.ops import xywh2xyxy


def non_max_suppression(
    prediction,
    conf_thres=0.25,
    iou_thres=0.45,
    classes=None,
    agnostic=False,
    multi_label=False,
    max_det=300,
    nc=0,
    max_time_img=0.05,
    max_nms=30000,
    max_wh=7680,
):
    """Filter the head's dense predictions down to at most ``max_det`` boxes per image.

    Class-aware NMS is done in one ``torchvision.ops.nms`` call by shifting each class's boxes by ``cls * max_wh``
    pixels so boxes of different classes can never overlap. The validator calls this with ``multi_label=True`` (a box
    may be kept once per class whose score clears ``conf_thres``) and ``agnostic=single_cls or agnostic_nms``.

    Unlike upstream, exceeding the time budget only logs a warning and never drops images, so results do not depend
    on machine speed.

    Args:
        prediction (torch.Tensor | list | tuple): (B, 4 + nc + extra, N) with xywh pixel boxes and sigmoid class
            scores; for a list or tuple (the head's ``(y, x)`` eval output) the first element is used.
        conf_thres (float): keep scores strictly above this.
        iou_thres (float): suppress boxes whose IoU with a kept, higher-scoring box exceeds this.
        classes (list[int], optional): keep only these classes.
        agnostic (bool): suppress across classes.
        multi_label (bool): allow several labels per box (ignored when there is a single class).
        max_det (int): boxes kept per image.
        nc (int): number of classes; channels after ``4 + nc`` are extra values (e.g. mask coefficients) carried
            along. 0 means all channels after the box are classes.
        max_time_img (float): time budget per image in seconds, on top of a 2 s allowance, before warning.
        max_nms (int): boxes passed to NMS per image, the most confident first.
        max_wh (int): class offset in pixels; must exceed the image size.

    Returns:
        (list[torch.Tensor]): per image, (n, 6 + extra) rows of x1, y1, x2, y2, conf, cls[, extra...], sorted by
            decreasing confidence.
    """
    if not 0 <= conf_thres <= 1:
        raise ValueError(f"Invalid confidence threshold {conf_thres}, valid values are between 0.0 and 1.0")
    if not 0 <= iou_thres <= 1:
        raise ValueError(f"Invalid IoU threshold {iou_thres}, valid values are between 0.0 and 1.0")
    if isinstance(prediction, (list, tuple)):
        prediction = prediction[0]

    bs = prediction.shape[0]
    nc = nc or (prediction.shape[1] - 4)
    multi_label = multi_label and nc > 1
    keep_classes = None if classes is None else torch.tensor(classes, device=prediction.device)
    candidates = prediction[:, 4 : 4 + nc].amax(1) > conf_thres  # (B, N)
    per_image = prediction.transpose(-1, -2)  # (B, N, C), a view: the input is never modified

    time_limit, start, warned = 2.0 + max_time_img * bs, time.time(), False
    output = []
    for xi in range(bs):
        x = per_image[xi][candidates[xi]]
        output.append(_nms_one(x, nc, conf_thres, iou_thres, keep_classes, agnostic, multi_label, max_det, max_nms,
                               max_wh))  # fmt: skip
        if not warned and time.time() - start > time_limit:
            LOGGER.warning(f"NMS time limit {time_limit:.3f}s exceeded")
            warned = True
    return output


def _nms_one(x, nc, conf_thres, iou_thres, keep_classes, agnostic, multi_label, max_det, max_nms, max_wh):
    """NMS for one image's (n, 4 + nc + extra) candidate rows; see ``non_max_suppression``."""
    extra = x.shape[1] - 4 - nc
    if not x.shape[0]:
        return torch.zeros((0, 6 + extra), device=x.device)
    box, scores, carried = xywh2xyxy(x[:, :4]), x[:, 4 : 4 + nc], x[:, 4 + nc :]
    if multi_label:
        i, j = torch.where(scores > conf_thres)
        det = torch.cat((box[i], scores[i, j, None], j[:, None].float(), carried[i]), 1)
    else:
        conf, j = scores.max(1, keepdim=True)
        det = torch.cat((box, conf, j.float(), carried), 1)[conf.view(-1) > conf_thres]
    if keep_classes is not None:
        det = det[(det[:, 5:6] == keep_classes).any(1)]
    if not det.shape[0]:
        return det
    if det.shape[0] > max_nms:
        det = det[det[:, 4].argsort(descending=True)[:max_nms]]
    offsets = det[:, 5:6] * (0 if agnostic else max_wh)
    keep = torchvision.ops.nms(det[:, :4] + offsets, det[:, 4], iou_thres)[:max_det]
    return det[keep]
