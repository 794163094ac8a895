"""The YOLO11 detection head: anchor-free, decoupled box (DFL) and class branches per feature level."""

import math

import torch
from torch import nn

from ultralytics.utils.tal import dist2bbox, make_anchors

from .block import DFL
from .conv import Conv, DWConv

__all__ = ("Detect",)


class Detect(nn.Module):
    """YOLO11 detection head.

    Each level gets a box branch (two 3×3 convs, then 4·reg_max bin logits) and a class branch (two depth-wise
    separable blocks, then nc logits). In training the raw per-level maps are returned for the loss; in
    inference they are decoded into boxes.

    Args:
        nc (int): number of classes.
        reg_max (int): DFL bins per box side.
        end2end (bool): upstream's NMS-free one-to-one head; not supported by this fork's YOLO11 models.
        ch (tuple[int]): input channels of each level.

    Returns (from ``forward``):
        training: list of (B, 4·reg_max + nc, H_i, W_i) maps.
        inference: ``(y, maps)`` where ``y`` is (B, 4 + nc, N): xywh boxes in input pixels, then sigmoid scores.
    """

    export = False  # set by exporters: return only the decoded tensor
    format = None  # export format name, for exporters that need a different decode layout
    dynamic = False  # set by exporters for dynamic shapes: rebuild anchors every call so a trace follows the input
    shape = None
    anchors = torch.empty(0)
    strides = torch.empty(0)

    def __init__(self, nc=80, reg_max=16, end2end=False, ch=()):
        super().__init__()
        if end2end:
            raise ValueError("Detect(end2end=True) is not supported: this fork builds YOLO11's NMS-based head")
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = reg_max
        self.no = nc + reg_max * 4
        self.end2end = False
        self.stride = torch.zeros(self.nl)  # filled in by DetectionModel's stride probe
        c2 = max(16, ch[0] // 4, reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(
                nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                nn.Conv2d(c3, nc, 1),
            )
            for x in ch
        )
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()

    def forward(self, x):
        """Run the branches on each level; decode boxes unless training."""
        x = [torch.cat((self.cv2[i](xi), self.cv3[i](xi)), 1) for i, xi in enumerate(x)]
        if self.training:
            return x
        y = self._inference(x)
        return y if self.export else (y, x)

    def _inference(self, x):
        """Concatenate the levels and decode distances into xywh pixel boxes with sigmoid class scores."""
        shape = x[0].shape
        x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
        key = (shape, x[0].device, x[0].dtype)  # anchors are rebuilt when size, device or precision change
        if self.dynamic or self.shape != key:
            anchors, strides = make_anchors(x, self.stride, 0.5)
            self.anchors, self.strides = anchors.transpose(0, 1), strides.transpose(0, 1)
            self.shape = key
        box, cls = x_cat.split((self.reg_max * 4, self.nc), 1)
        dbox = self.decode_bboxes(self.dfl(box), self.anchors.unsqueeze(0)) * self.strides
        return torch.cat((dbox, cls.sigmoid()), 1)

    def decode_bboxes(self, bboxes, anchors):
        """Turn (l, t, r, b) distances in grid units into xywh boxes in grid units."""
        return dist2bbox(bboxes, anchors, xywh=True, dim=1)

    def bias_init(self):
        """Start box logits at 1 and class logits at a prior of ~5 objects per 640² image (needs strides)."""
        for box_branch, cls_branch, s in zip(self.cv2, self.cv3, self.stride):
            box_branch[-1].bias.data[:] = 1.0
            cls_branch[-1].bias.data[: self.nc] = math.log(5 / self.nc / (640 / s) ** 2)
