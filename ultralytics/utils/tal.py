"""Anchor points, distance/box conversions and the task-aligned assigner of the anchor-free YOLO head."""

import torch
from torch import nn

from ultralytics.utils.metrics import bbox_iou


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


def bbox2dist(anchor_points, bbox, reg_max=None):
    """Turn xyxy boxes into (left, top, right, bottom) distances, clamped just below ``reg_max`` for the DFL.

    With ``reg_max=None`` (heads without a distribution, ``reg_max == 1``) the distances are returned unclamped.
    """
    x1y1, x2y2 = bbox.chunk(2, -1)
    dist = torch.cat((anchor_points - x1y1, x2y2 - anchor_points), -1)
    return dist if reg_max is None else dist.clamp_(0, reg_max - 0.01)


# ------------------------------------------------------------------------------------------- task-aligned assignment
class TaskAlignedAssigner(nn.Module):
    """Pick the positive anchors of each ground-truth box by a task-aligned metric (TOOD), as upstream 8.4 does.

    For every (gt, anchor) pair whose anchor centre lies inside the gt box, the alignment metric is
    ``score ** alpha * CIoU ** beta``, where ``score`` is the predicted probability of the gt's class and ``CIoU`` is
    the clamped Complete IoU of the anchor's predicted box with the gt. Each gt takes its ``topk`` best anchors; an
    anchor claimed by several gts goes to the gt it overlaps most. Class targets are soft: a positive anchor's score
    target is its metric divided by the best metric of its gt, times that gt's best IoU.

    Since 8.4, a gt narrower or shorter than the smallest stride is widened (for candidate selection only) to the
    second stride, so tiny objects still have anchor centres inside them.

    Attributes:
        topk (int): anchors kept per gt.
        topk2 (int): anchors kept per gt after conflicts are resolved (equal to ``topk`` means no second cut).
        num_classes (int): number of classes; also the label given to background anchors when there is no gt.
        alpha (float): exponent of the classification score in the metric.
        beta (float): exponent of the IoU in the metric.
        eps (float): guard against division by zero.
        stride (list | None): head strides; None disables the small-box widening.
    """

    def __init__(self, topk=10, num_classes=80, alpha=0.5, beta=6.0, eps=1e-9, stride=(8, 16, 32), topk2=None):
        """Store the hyper-parameters; the loss passes topk=10, alpha=0.5, beta=6.0 and the model's strides."""
        super().__init__()
        self.topk = topk
        self.topk2 = topk2 or topk
        self.num_classes = num_classes
        self.alpha = alpha
        self.beta = beta
        self.eps = eps
        self.stride = [float(s) for s in stride] if stride is not None else None
        self.stride_val = None if self.stride is None else self.stride[1 if len(self.stride) > 1 else 0]

    @torch.no_grad()
    def forward(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        """Assign targets to anchors.

        Args:
            pd_scores (torch.Tensor): (B, A, C) predicted class probabilities.
            pd_bboxes (torch.Tensor): (B, A, 4) predicted xyxy boxes in pixels.
            anc_points (torch.Tensor): (A, 2) anchor centres in pixels.
            gt_labels (torch.Tensor): (B, G, 1) gt classes (padding rows arbitrary).
            gt_bboxes (torch.Tensor): (B, G, 4) gt xyxy boxes in pixels (padding rows zero).
            mask_gt (torch.Tensor): (B, G, 1) 1 for real gts, 0 for padding.

        Returns:
            (tuple): target_labels (B, A) long, target_bboxes (B, A, 4), target_scores (B, A, C),
                fg_mask (B, A) bool and target_gt_idx (B, A) long.
        """
        if gt_bboxes.shape[1] == 0:
            return self._no_targets(pd_scores, pd_bboxes)
        mask_pos, align_metric, overlaps = self.get_pos_mask(
            pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt
        )
        target_gt_idx, fg_mask, mask_pos = self.select_highest_overlaps(mask_pos, overlaps, align_metric)
        target_labels, target_bboxes, target_scores = self.get_targets(gt_labels, gt_bboxes, target_gt_idx, fg_mask)
        target_scores = target_scores * self._score_scale(align_metric, overlaps, mask_pos)
        return target_labels, target_bboxes, target_scores, fg_mask.bool(), target_gt_idx

    def _no_targets(self, pd_scores, pd_bboxes):
        """Everything is background when the batch has no gt at all."""
        background = torch.full(pd_scores.shape[:2], self.num_classes, dtype=torch.long, device=pd_scores.device)
        zeros_idx = torch.zeros(pd_scores.shape[:2], dtype=torch.long, device=pd_scores.device)
        fg_mask = torch.zeros(pd_scores.shape[:2], dtype=torch.bool, device=pd_scores.device)
        return background, torch.zeros_like(pd_bboxes), torch.zeros_like(pd_scores), fg_mask, zeros_idx

    def get_pos_mask(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt):
        """Candidate (gt, anchor) pairs: anchor inside the gt and among the gt's top-k by alignment metric.

        Returns:
            (tuple): mask_pos, align_metric and overlaps, each (B, G, A).
        """
        mask_in_gts = self.select_candidates_in_gts(anc_points, gt_bboxes, mask_gt)
        align_metric, overlaps = self.get_box_metrics(pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask_in_gts * mask_gt)
        mask_topk = self.select_topk_candidates(align_metric, mask_gt)
        return mask_topk * mask_in_gts * mask_gt, align_metric, overlaps

    def select_candidates_in_gts(self, anc_points, gt_bboxes, mask_gt=None, eps=1e-9):
        """(B, G, A) float mask of anchor centres strictly inside each (possibly widened) gt box."""
        boxes = self._widen_small_boxes(gt_bboxes, mask_gt)
        points = anc_points[None, None]  # (1, 1, A, 2)
        deltas = torch.cat((points - boxes[..., None, :2], boxes[..., None, 2:] - points), -1)  # (B, G, A, 4)
        return (deltas.amin(-1) > eps).to(gt_bboxes.dtype)

    def _widen_small_boxes(self, gt_bboxes, mask_gt):
        """Widen (about their centres) real gts whose side is below the smallest stride to ``stride_val``."""
        if self.stride is None or mask_gt is None:
            return gt_bboxes
        centre = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2
        size = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        small = (size < self.stride[0]) & mask_gt.bool()
        size = torch.where(small, torch.full_like(size, self.stride_val), size)
        return torch.cat((centre - size / 2, centre + size / 2), -1)

    def get_box_metrics(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask):
        """Alignment metric and CIoU of every candidate (gt, anchor) pair; zero elsewhere.

        Returns:
            (tuple): align_metric and overlaps, each (B, G, A).
        """
        bs, n_gt, n_anchors = mask.shape
        mask = mask.bool()
        labels = gt_labels.long().view(bs, 1, n_gt).expand(-1, n_anchors, -1)  # (B, A, G)
        class_scores = pd_scores.gather(2, labels).permute(0, 2, 1)  # (B, G, A): score of each gt's class
        bbox_scores = torch.zeros_like(class_scores)
        bbox_scores[mask] = class_scores[mask]

        overlaps = torch.zeros((bs, n_gt, n_anchors), dtype=pd_bboxes.dtype, device=pd_bboxes.device)
        pd = pd_bboxes.unsqueeze(1).expand(-1, n_gt, -1, -1)[mask]
        gt = gt_bboxes.unsqueeze(2).expand(-1, -1, n_anchors, -1)[mask]
        overlaps[mask] = self.iou_calculation(gt, pd)
        return bbox_scores.pow(self.alpha) * overlaps.pow(self.beta), overlaps

    def iou_calculation(self, gt_bboxes, pd_bboxes):
        """CIoU of paired xyxy boxes, clamped at 0 (upstream uses CIoU here, not plain IoU)."""
        return bbox_iou(gt_bboxes, pd_bboxes, xywh=False, CIoU=True).squeeze(-1).clamp_(0)

    def select_topk_candidates(self, metrics, mask_gt=None):
        """(B, G, A) mask of each real gt's ``topk`` anchors by metric (padding gts get none)."""
        k = min(self.topk, metrics.shape[-1])
        idx = metrics.topk(k, dim=-1, largest=True).indices
        selected = torch.zeros_like(metrics).scatter_(-1, idx, 1.0)
        return selected if mask_gt is None else selected * mask_gt

    def select_highest_overlaps(self, mask_pos, overlaps, align_metric):
        """Give each anchor claimed by several gts to the gt it overlaps most, then apply the optional ``topk2``.

        Returns:
            (tuple): target_gt_idx (B, A), fg_mask (B, A) and the updated mask_pos (B, G, A).
        """
        if mask_pos.sum(-2).max() > 1:
            contested = (mask_pos.sum(-2) > 1).unsqueeze(1)  # (B, 1, A)
            best_gt = torch.zeros_like(mask_pos).scatter_(1, overlaps.argmax(1, keepdim=True), 1.0)
            mask_pos = torch.where(contested, best_gt, mask_pos)
        if self.topk2 != self.topk:
            k = min(self.topk2, mask_pos.shape[-1])
            idx = (align_metric * mask_pos).topk(k, dim=-1, largest=True).indices
            mask_pos = mask_pos * torch.zeros_like(mask_pos).scatter_(-1, idx, 1.0)
        return mask_pos.argmax(-2), mask_pos.sum(-2), mask_pos

    def get_targets(self, gt_labels, gt_bboxes, target_gt_idx, fg_mask):
        """Gather each anchor's gt class, box and one-hot score (zero for background anchors).

        Returns:
            (tuple): target_labels (B, A), target_bboxes (B, A, 4) and target_scores (B, A, C).
        """
        bs, n_gt = gt_bboxes.shape[:2]
        flat_idx = target_gt_idx + torch.arange(bs, device=gt_labels.device)[:, None] * n_gt
        target_labels = gt_labels.long().flatten()[flat_idx].clamp_(0)
        target_bboxes = gt_bboxes.view(-1, gt_bboxes.shape[-1])[flat_idx]
        target_scores = torch.zeros((*target_labels.shape, self.num_classes), device=gt_labels.device)
        target_scores.scatter_(2, target_labels.unsqueeze(-1), 1.0)
        target_scores = target_scores * (fg_mask[..., None] > 0)
        return target_labels, target_bboxes, target_scores

    def _score_scale(self, align_metric, overlaps, mask_pos):
        """(B, A, 1) soft score of each anchor: metric / best metric of its gt * best IoU of its gt."""
        align_metric = align_metric * mask_pos
        best_metric = align_metric.amax(-1, keepdim=True)  # (B, G, 1)
        best_overlap = (overlaps * mask_pos).amax(-1, keepdim=True)
        return (align_metric * best_overlap / (best_metric + self.eps)).amax(-2).unsqueeze(-1)
