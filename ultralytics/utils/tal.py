"""Anchor points and distance/box conversions for the anchor-free YOLO head and its task-aligned assigner."""

import torch


def make_anchors(feats, strides, grid_cell_offset=0.5):
    """Return anchor centres (in grid units) and their strides for a list of feature maps.

    Args:
        feats (list[torch.Tensor] | torch.Tensor): feature maps of shape (B, C, H, W), one per level.
        strides (torch.Tensor | list): stride of each level in input pixels.
        grid_cell_offset (float): offset of the anchor within its cell; 0.5 is the cell centre.

    Returns:
        (torch.Tensor, torch.Tensor): anchor points (N, 2) as (x, y) and strides (N, 1), levels concatenated.
    """
    points, stride_list = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for i, stride in enumerate(strides):
        h, w = feats[i].shape[2:]
        sx = torch.arange(w, device=device, dtype=dtype) + grid_cell_offset
        sy = torch.arange(h, device=device, dtype=dtype) + grid_cell_offset
        grid_y, grid_x = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((grid_x, grid_y), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), stride, dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_list)


def dist2bbox(distance, anchor_points, xywh=True, dim=-1):
    """Turn (left, top, right, bottom) distances from anchor points into xywh or xyxy boxes."""
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


def bbox2dist(anchor_points, bbox, reg_max):
    """Turn xyxy boxes into (left, top, right, bottom) distances, clamped just below ``reg_max`` for the DFL."""
    x1y1, x2y2 = bbox.chunk(2, -1)
    return torch.cat((anchor_points - x1y1, x2y2 - anchor_points), -1).clamp_(0, reg_max - 0.01)
