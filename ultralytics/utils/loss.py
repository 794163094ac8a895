"""Detection training loss (box CIoU + classification BCE + distribution focal loss), as in Ultralytics 8.4."""

import torch
import torch.nn.functional as F
from torch import nn

from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.ops import xywh2xyxy
from ultralytics.utils.tal import TaskAlignedAssigner, bbox2dist, dist2bbox, make_anchors

DEFAULT_GAINS = {"box": 7.5, "cls": 0.5, "dfl": 1.5}  # upstream default.yaml loss gains


class DFLoss(nn.Module):
    """Distribution focal loss (Li et al., Generalized Focal Loss).

    A continuous target distance ``t`` between bins ``l = floor(t)`` and ``l + 1`` is learnt as the cross-entropy to
    both bins, weighted by closeness, so the softmax expectation over bins converges to ``t``.
    """

    def __init__(self, reg_max=16):
        """Remember the number of bins per box side."""
        super().__init__()
        self.reg_max = reg_max

    def forward(self, pred_dist, target):
        """Loss per (anchor, side) pair averaged over the four sides.

        Args:
            pred_dist (torch.Tensor): (n * 4, reg_max) bin logits.
            target (torch.Tensor): (n, 4) target distances in stride units.

        Returns:
            (torch.Tensor): (n, 1) loss per anchor.
        """
        target = target.clamp(0, self.reg_max - 1 - 0.01)
        left = target.long()
        right = left + 1
        weight_left = right - target
        weight_right = 1 - weight_left
        ce_left = F.cross_entropy(pred_dist, left.view(-1), reduction="none").view(left.shape)
        ce_right = F.cross_entropy(pred_dist, right.view(-1), reduction="none").view(left.shape)
        return (ce_left * weight_left + ce_right * weight_right).mean(-1, keepdim=True)


class BboxLoss(nn.Module):
    """Box regression loss: (1 - CIoU) plus DFL (or a normalised L1 for heads without bins), score-weighted."""

    def __init__(self, reg_max=16):
        """Use DFL when the head predicts a distribution (``reg_max > 1``)."""
        super().__init__()
        self.dfl_loss = DFLoss(reg_max) if reg_max > 1 else None

    def forward(
        self,
        pred_dist,
        pred_bboxes,
        anchor_points,
        target_bboxes,
        target_scores,
        target_scores_sum,
        fg_mask,
        imgsz=None,
        stride=None,
    ):
        """IoU and DFL losses over the foreground anchors.

        Each positive anchor is weighted by the sum of its soft class target, so well-aligned anchors count more; both
        terms are normalised by the total target score of the batch.

        Args:
            pred_dist (torch.Tensor): (B, A, 4 * reg_max) bin logits (or (B, A, 4) distances when reg_max is 1).
            pred_bboxes (torch.Tensor): (B, A, 4) decoded xyxy boxes in stride units.
            anchor_points (torch.Tensor): (A, 2) anchor centres in stride units.
            target_bboxes (torch.Tensor): (B, A, 4) assigned xyxy boxes in stride units.
            target_scores (torch.Tensor): (B, A, C) soft class targets.
            target_scores_sum (torch.Tensor | float): normaliser, at least 1.
            fg_mask (torch.Tensor): (B, A) bool foreground mask.
            imgsz (torch.Tensor, optional): (h, w) image size, only needed when reg_max is 1.
            stride (torch.Tensor, optional): (A, 1) anchor strides, only needed when reg_max is 1.

        Returns:
            (tuple[torch.Tensor, torch.Tensor]): IoU loss and DFL (or L1) loss.
        """
        weight = target_scores.sum(-1)[fg_mask].unsqueeze(-1)
        iou = bbox_iou(pred_bboxes[fg_mask], target_bboxes[fg_mask], xywh=False, CIoU=True)
        loss_iou = ((1.0 - iou) * weight).sum() / target_scores_sum
        if self.dfl_loss is not None:
            reg_max = self.dfl_loss.reg_max
            target_ltrb = bbox2dist(anchor_points, target_bboxes, reg_max - 1)
            loss_dfl = self.dfl_loss(pred_dist[fg_mask].view(-1, reg_max), target_ltrb[fg_mask]) * weight
        else:
            loss_dfl = self._l1(pred_dist, anchor_points, target_bboxes, fg_mask, imgsz, stride) * weight
        return loss_iou, loss_dfl.sum() / target_scores_sum

    @staticmethod
    def _l1(pred_dist, anchor_points, target_bboxes, fg_mask, imgsz, stride):
        """(n, 1) L1 between predicted and target distances, both expressed as fractions of the image size."""
        scale = stride / torch.stack((imgsz[1], imgsz[0], imgsz[1], imgsz[0]))  # (A, 4)
        target = bbox2dist(anchor_points, target_bboxes) * scale
        pred = pred_dist * scale
        return F.l1_loss(pred[fg_mask], target[fg_mask], reduction="none").mean(-1, keepdim=True)


def _gain(hyp, name):
    """Read a loss gain from an args namespace or dict, falling back to upstream's default."""
    value = hyp.get(name) if isinstance(hyp, dict) else getattr(hyp, name, None)
    return DEFAULT_GAINS[name] if value is None else float(value)


def _device_of(model, head):
    """Device of the model's parameters, or of the head's stride for parameter-less stand-ins."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    if first is not None:
        return first.device
    stride = getattr(head, "stride", None)
    return stride.device if isinstance(stride, torch.Tensor) else torch.device("cpu")


class v8DetectionLoss:
    """Training criterion of the YOLOv8/YOLO11 detection head.

    loss = [7.5 * box (1 - CIoU), 0.5 * cls (BCE), 1.5 * DFL] with gains read from ``model.args``; targets come from
    the ``TaskAlignedAssigner`` (topk=10, alpha=0.5, beta=6.0, the head's strides).
    """

    def __init__(self, model, tal_topk=10, tal_topk2=None):
        """Read the head's geometry and the loss gains from a (de-paralleled) DetectionModel-like object.

        Args:
            model: has ``args`` (namespace or dict with box/cls/dfl gains) and ``model[-1]``, the Detect head with
                ``nc``, ``reg_max`` and ``stride``.
            tal_topk (int): anchors per gt in the assigner.
            tal_topk2 (int, optional): second top-k cut after conflict resolution.
        """
        head = model.model[-1]
        self.device = _device_of(model, head)
        self.hyp = getattr(model, "args", None) or {}
        self.nc = int(head.nc)
        self.reg_max = int(head.reg_max)
        self.no = self.nc + self.reg_max * 4
        self.stride = torch.as_tensor(head.stride, dtype=torch.float32, device=self.device)
        self.use_dfl = self.reg_max > 1
        self.bce = nn.BCEWithLogitsLoss(reduction="none")
        self.assigner = TaskAlignedAssigner(
            topk=tal_topk, num_classes=self.nc, alpha=0.5, beta=6.0, stride=self.stride.tolist(), topk2=tal_topk2
        )
        self.bbox_loss = BboxLoss(self.reg_max).to(self.device)
        self.proj = torch.arange(self.reg_max, dtype=torch.float, device=self.device)

    def __call__(self, preds, batch):
        """Compute the loss of a training batch.

        Args:
            preds: the head's training output: a list of (B, no, H, W) maps, a tuple whose [1] is that list, or an
                8.4-style dict with ``boxes`` (B, 4 * reg_max, A), ``scores`` (B, nc, A) and ``feats``.
            batch (dict): ``batch_idx`` (n,), ``cls`` (n, 1) and ``bboxes`` (n, 4) normalised xywh.

        Returns:
            (tuple[torch.Tensor, torch.Tensor]): ``loss.sum() * batch_size`` to back-propagate and the detached
                (3,) [box, cls, dfl] items for logging. Upstream 8.4 returns the (3,) ``loss * batch_size`` vector and
                its trainer sums it, so the back-propagated value is identical.
        """
        loss, _ = self.loss_and_assignment(preds, batch)
        return loss.sum() * self.batch_size, loss.detach()

    def parse_preds(self, preds):
        """Return (feats, pred_distri (B, A, 4 * reg_max), pred_scores (B, A, nc)) from any accepted output form."""
        if isinstance(preds, (tuple, list)) and len(preds) == 2 and isinstance(preds[1], (list, tuple, dict)):
            preds = preds[1]
        if isinstance(preds, dict):
            feats, boxes, scores = preds["feats"], preds["boxes"], preds["scores"]
        else:
            feats = list(preds)
            flat = torch.cat([f.view(f.shape[0], self.no, -1) for f in feats], 2)
            boxes, scores = flat.split((self.reg_max * 4, self.nc), 1)
        return feats, boxes.permute(0, 2, 1).contiguous(), scores.permute(0, 2, 1).contiguous()

    def preprocess(self, targets, batch_size, scale_tensor):
        """Pack (n, 6) [image, cls, xywh-normalised] rows into (B, max_n, 5) [cls, xyxy-pixels], zero-padded."""
        if targets.shape[0] == 0:
            return torch.zeros(batch_size, 0, targets.shape[1] - 1, device=self.device)
        image = targets[:, 0].long()
        counts = torch.bincount(image, minlength=batch_size)
        out = torch.zeros(batch_size, int(counts.max()), targets.shape[1] - 1, device=self.device)
        for j in range(batch_size):
            rows = targets[image == j, 1:]
            out[j, : len(rows)] = rows
        out[..., 1:5] = xywh2xyxy(out[..., 1:5] * scale_tensor)
        return out

    def bbox_decode(self, anchor_points, pred_dist):
        """Decode bin logits to xyxy boxes (stride units) via the softmax expectation over bins."""
        if self.use_dfl:
            b, a, c = pred_dist.shape
            pred_dist = pred_dist.view(b, a, 4, c // 4).softmax(3).matmul(self.proj.type(pred_dist.dtype))
        return dist2bbox(pred_dist, anchor_points, xywh=False)

    def loss_and_assignment(self, preds, batch):
        """The gained (3,) loss [box, cls, dfl] and the assignment (fg_mask, target_gt_idx, target_bboxes).

        Sets ``self.batch_size`` for ``__call__``.
        """
        feats, pred_distri, pred_scores = self.parse_preds(preds)
        dtype, self.batch_size = pred_scores.dtype, pred_scores.shape[0]
        anchor_points, stride_tensor = make_anchors(feats, self.stride, 0.5)
        imgsz = torch.tensor(feats[0].shape[2:], device=self.device, dtype=dtype) * self.stride[0]  # (h, w)

        gt_labels, gt_bboxes, mask_gt = self._targets(batch, imgsz)
        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)
        _, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            pred_scores.detach().sigmoid(),
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
        )
        target_scores_sum = max(target_scores.sum(), 1)

        loss = torch.zeros(3, device=self.device)
        loss[1] = self.bce(pred_scores, target_scores.to(dtype)).sum() / target_scores_sum
        if fg_mask.sum():
            loss[0], loss[2] = self.bbox_loss(
                pred_distri,
                pred_bboxes,
                anchor_points,
                target_bboxes / stride_tensor,
                target_scores,
                target_scores_sum,
                fg_mask,
                imgsz,
                stride_tensor,
            )
        gains = torch.tensor([_gain(self.hyp, k) for k in ("box", "cls", "dfl")], device=self.device)
        return loss * gains, (fg_mask, target_gt_idx, target_bboxes)

    def _targets(self, batch, imgsz):
        """(B, G, 1) labels, (B, G, 4) xyxy pixel boxes and (B, G, 1) validity mask from the batch dict."""
        targets = torch.cat(
            (batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"].view(-1, 4)), 1
        ).to(self.device)
        targets = self.preprocess(targets, self.batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)
        return gt_labels, gt_bboxes, gt_bboxes.sum(2, keepdim=True).gt_(0.0)
