"""Detection loss, task-aligned assigner, NMS, validation metrics and plots, checked against hand-computed values."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ultralytics.utils import plotting
from ultralytics.utils.loss import BboxLoss, DFLoss, v8DetectionLoss
from ultralytics.utils.metrics import (
    ConfusionMatrix,
    DetMetrics,
    ap_per_class,
    bbox_iou,
    box_iou,
    compute_ap,
    match_predictions,
)
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.tal import TaskAlignedAssigner, make_anchors


# ------------------------------------------------------------------------------------------------------------ IoU
def test_bbox_iou_giou_diou_by_hand():
    a, b = torch.tensor([0.0, 0, 10, 10]), torch.tensor([5.0, 5, 15, 15])
    iou = 25 / 175  # overlap 5x5, union 100 + 100 - 25
    assert bbox_iou(a, b, xywh=False).item() == pytest.approx(iou, abs=1e-6)
    assert bbox_iou(a, b, xywh=False, GIoU=True).item() == pytest.approx(iou - (225 - 175) / 225, abs=1e-6)
    assert bbox_iou(a, b, xywh=False, DIoU=True).item() == pytest.approx(iou - 50 / 450, abs=1e-6)
    # same boxes given as xywh
    aw, bw = torch.tensor([5.0, 5, 10, 10]), torch.tensor([10.0, 10, 10, 10])
    assert bbox_iou(aw, bw).item() == pytest.approx(iou, abs=1e-6)


def test_ciou_by_hand_and_pairwise_box_iou():
    a, b = torch.tensor([0.0, 0, 4, 2]), torch.tensor([1.0, 0, 3, 4])  # 4x2 and 2x4 boxes
    iou = 4 / (8 + 8 - 4)
    rho2 = (2 - 2) ** 2 + (1 - 2) ** 2  # centre distance squared
    c2 = 4**2 + 4**2  # enclosing box diagonal squared
    v = 4 / math.pi**2 * (math.atan(2 / 4) - math.atan(4 / 2)) ** 2
    alpha = v / (v - iou + 1)
    assert bbox_iou(a, b, xywh=False, CIoU=True).item() == pytest.approx(iou - (rho2 / c2 + v * alpha), abs=1e-5)

    pairwise = box_iou(torch.stack((a, b)), torch.tensor([[0.0, 0, 4, 2], [10, 10, 11, 11]]))
    assert pairwise.shape == (2, 2)
    assert pairwise[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert pairwise[1, 0].item() == pytest.approx(iou, abs=1e-6)
    assert pairwise[:, 1].abs().max().item() == 0


# ------------------------------------------------------------------------------------------------------------- AP
def test_compute_ap_perfect_and_known_curve():
    assert compute_ap(np.array([1.0]), np.array([1.0]))[0] == pytest.approx(0.995)  # upstream's perfect score
    # TP, FP, TP with 2 targets: precision envelope is 1 up to recall 0.5, then 2/3, then the 0 sentinel at recall 1
    ap, mpre, mrec = compute_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]))
    expected = 0.49 + (1 + 2 / 3) / 2 * 0.01 + 0.49 * 2 / 3 + (2 / 3) / 2 * 0.01
    assert ap == pytest.approx(expected, abs=1e-9)
    assert mrec[0] == 0 and mrec[-1] == 1 and np.all(np.diff(mpre) <= 0)


def test_ap_per_class_tiny_case():
    # class 0: 2 targets, predictions TP 0.9, FP 0.8, TP 0.7 at every IoU; class 1: 1 target found perfectly
    tp = np.array([1, 0, 1, 1], dtype=bool)[:, None].repeat(10, 1)
    conf = np.array([0.9, 0.8, 0.7, 0.95])
    pred_cls = np.array([0, 0, 0, 1])
    target_cls = np.array([0, 0, 1])
    tp_n, fp_n, p, r, f1, ap, classes, p_curve, r_curve, f1_curve, x, prec = ap_per_class(
        tp, conf, pred_cls, target_cls
    )
    assert classes.tolist() == [0, 1]
    assert ap[0] == pytest.approx(np.full(10, 0.828333333), abs=1e-6)
    assert ap[1] == pytest.approx(np.full(10, 0.995))
    assert p_curve.shape == r_curve.shape == f1_curve.shape == prec.shape == (2, 1000) and x.shape == (1000,)
    assert r[1] == pytest.approx(1.0) and p[1] == pytest.approx(1.0)
    assert tp_n[1] == 1 and fp_n[1] == 0


def test_ap_per_class_perfect_single_class_operating_point():
    tp = np.ones((2, 10), dtype=bool)
    _, _, p, r, f1, ap, *_ = ap_per_class(tp, np.array([0.9, 0.8]), np.array([3, 3]), np.array([3, 3]))
    assert p[0] == pytest.approx(1.0) and r[0] == pytest.approx(1.0) and f1[0] == pytest.approx(1.0)
    assert ap[0, 0] == pytest.approx(0.995)


def test_match_predictions_greedy_rules():
    iou = torch.tensor([[0.9, 0.6, 0.0, 0.95], [0.0, 0.0, 0.72, 0.0]])  # truths x predictions
    pred_cls, true_cls = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1])
    correct = match_predictions(pred_cls, true_cls, iou)
    assert correct.shape == (4, 10) and correct.dtype == torch.bool
    assert correct[0].tolist() == [True] * 9 + [False]  # IoU 0.9 passes thresholds 0.50..0.90
    assert not correct[1].any()  # its truth is already taken
    assert correct[2].tolist() == [True] * 5 + [False] * 5  # IoU 0.72 passes 0.50..0.70
    assert not correct[3].any()  # high IoU but wrong class

    # upstream tie-break: a truth goes to the lowest-index (most confident) candidate, not the highest IoU
    both = match_predictions(torch.tensor([0, 0]), torch.tensor([0]), torch.tensor([[0.6, 0.9]]))
    assert both[0].tolist() == [True] * 3 + [False] * 7
    assert both[1].tolist() == [False] * 3 + [True] * 6 + [False]


# -------------------------------------------------------------------------------------------- metric containers
def test_det_metrics_results_dict_and_fitness(monkeypatch, tmp_path):
    saved = []
    monkeypatch.setattr(plotting, "plot_pr_curve", lambda *a, **k: saved.append(a[3].name))
    monkeypatch.setattr(plotting, "plot_mc_curve", lambda *a, **k: saved.append(a[2].name))
    metrics = DetMetrics({0: "cat", 1: "dog", 2: "bird"})
    metrics.update_stats(
        {
            "tp": np.array([[True] * 10, [False] * 10]),
            "conf": np.array([0.9, 0.4]),
            "pred_cls": np.array([0, 1]),
            "target_cls": np.array([0, 1]),
            "target_img": np.array([0, 1]),
        }
    )
    metrics.process(save_dir=tmp_path, plot=True)
    assert saved == ["BoxPR_curve.png", "BoxF1_curve.png", "BoxP_curve.png", "BoxR_curve.png"]
    results = metrics.results_dict
    assert list(results) == [
        "metrics/precision(B)",
        "metrics/recall(B)",
        "metrics/mAP50(B)",
        "metrics/mAP50-95(B)",
        "fitness",
    ]
    assert results["metrics/mAP50(B)"] == pytest.approx(0.995 / 2)
    assert results["fitness"] == results["metrics/mAP50-95(B)"]  # 8.4: fitness is mAP50-95 alone
    assert metrics.ap_class_index.tolist() == [0, 1]
    assert metrics.maps.shape == (3,) and metrics.maps[2] == pytest.approx(metrics.box.map)  # unseen class
    assert len(metrics.class_result(0)) == 4 and metrics.nt_per_class.tolist() == [1, 1, 0]
    metrics.clear_stats()
    assert metrics.process() == {}


def test_confusion_matrix_counts():
    cm = ConfusionMatrix(nc=2, conf=0.001)  # the validator's default conf is replaced by 0.25
    detections = torch.tensor(
        [
            [0, 0, 10, 10, 0.9, 0],  # correct class-0 detection
            [20, 20, 30, 30, 0.8, 1],  # matches a class-0 truth with the wrong class
            [50, 50, 60, 60, 0.9, 1],  # matches nothing: background false positive
            [80, 80, 90, 90, 0.1, 1],  # below conf: ignored, so the class-1 truth there is missed
        ]
    )
    truths = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [80, 80, 90, 90]])
    cm.process_batch(detections, truths, torch.tensor([0, 0, 1]))
    assert cm.matrix.tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]
    cm.process_batch(None, truths[:1], torch.tensor([1]))  # no detections: a missed class-1 object
    cm.process_batch(detections[:1], torch.zeros((0, 4)), torch.zeros(0))  # no truths: a false positive
    assert cm.matrix.tolist() == [[1, 0, 1], [1, 0, 1], [0, 2, 0]]
    tp, fp = cm.tp_fp()
    assert tp.tolist() == [1, 0] and fp.tolist() == [1, 2]


# ------------------------------------------------------------------------------------------------------------ NMS
def _head_output(rows):
    """(1, 4 + nc, n) tensor from rows of (cx, cy, w, h, score_0, score_1, ...)."""
    return torch.tensor(rows, dtype=torch.float32).T[None]


def test_nms_suppresses_overlaps_but_keeps_classes_apart():
    pred = _head_output(
        [
            [50, 50, 20, 20, 0.9, 0.0],
            [51, 51, 20, 20, 0.8, 0.0],  # overlaps the first, same class: suppressed
            [50, 50, 20, 20, 0.0, 0.7],  # same place, other class: kept
            [200, 200, 10, 10, 0.6, 0.0],
            [300, 300, 10, 10, 0.2, 0.1],  # below conf
        ]
    )
    before = pred.clone()
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45)
    assert torch.equal(pred, before)  # input untouched
    assert out.shape == (3, 6)
    assert out[:, 4].tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert out[:, 5].tolist() == [0, 1, 0]
    assert out[0, :4].tolist() == [40, 40, 60, 60]  # xywh converted to xyxy

    (agnostic,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45, agnostic=True)
    assert agnostic[:, 4].tolist() == pytest.approx([0.9, 0.6])
    (limited,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45, max_det=2)
    assert limited[:, 4].tolist() == pytest.approx([0.9, 0.7])
    (only_1,) = non_max_suppression(pred, conf_thres=0.25, classes=[1])
    assert only_1[:, 5].tolist() == [1]


def test_nms_multi_label_and_batches():
    pred = _head_output([[50, 50, 20, 20, 0.9, 0.5], [120, 120, 20, 20, 0.1, 0.05]])
    (single,) = non_max_suppression(pred, conf_thres=0.3)
    (multi,) = non_max_suppression(pred, conf_thres=0.3, multi_label=True)
    assert single[:, 5].tolist() == [0]
    assert multi[:, 5].tolist() == [0, 1] and multi[:, 4].tolist() == pytest.approx([0.9, 0.5])
    outs = non_max_suppression((torch.cat((pred, torch.zeros_like(pred))), None), conf_thres=0.3)
    assert len(outs) == 2 and outs[1].shape == (0, 6)


# ------------------------------------------------------------------------------------------------------- assigner
def _grid(size=64, stride=8):
    """Anchor centres (pixels) of one stride level over a size x size image."""
    points, _ = make_anchors([torch.zeros(1, 1, size // stride, size // stride)], torch.tensor([stride]))
    return points * stride


def _assign(assigner, gt_boxes, gt_labels, pred_boxes=None, score=0.5, nc=3):
    anchors = _grid()
    n = anchors.shape[0]
    pd_scores = torch.full((1, n, nc), score)
    pd_bboxes = (gt_boxes[0] if pred_boxes is None else pred_boxes).expand(1, n, 4).clone()
    gt_b = gt_boxes[None]
    labels = torch.tensor(gt_labels, dtype=torch.float32).view(1, -1, 1)
    return assigner(pd_scores, pd_bboxes, anchors, labels, gt_b, torch.ones(1, gt_b.shape[1], 1)), anchors


def test_assigner_assigns_inside_anchors_only():
    gt = torch.tensor([[16.0, 16, 48, 48]])
    assigner = TaskAlignedAssigner(topk=10, num_classes=3, stride=(8, 16, 32))
    (labels, boxes, scores, fg, gt_idx), anchors = _assign(assigner, gt, [2])
    inside = ((anchors > 16) & (anchors < 48)).all(1)
    assert fg.sum().item() == 10  # top-k of the 16 inside anchors
    assert not (fg[0] & ~inside).any()  # nothing outside the box
    assert (labels[0][fg[0]] == 2).all() and torch.equal(boxes[0][fg[0]], gt.expand(10, 4))
    # prediction equals the gt, so CIoU = 1 and the soft target is 1 on the gt's class, 0 elsewhere
    assert scores[0][fg[0], 2] == pytest.approx(torch.ones(10), abs=1e-5)
    assert scores[0][~fg[0]].abs().sum() == 0 and scores[0][:, :2].abs().sum() == 0


def test_assigner_resolves_conflicts_by_highest_iou():
    gts = torch.tensor([[0.0, 0, 32, 32], [16, 16, 48, 48]])
    assigner = TaskAlignedAssigner(topk=16, num_classes=3)
    (_, _, _, fg, gt_idx), anchors = _assign(assigner, gts, [0, 1], pred_boxes=gts[1])
    shared = ((anchors > 16) & (anchors < 32)).all(1)  # centres inside both boxes
    assert shared.sum() == 4 and fg[0][shared].all()
    assert (gt_idx[0][shared] == 1).all()  # predictions overlap the second gt more


def test_assigner_widens_tiny_boxes_and_handles_no_gt():
    tiny = torch.tensor([[30.0, 30, 34, 34]])  # 4 px: no anchor centre (28, 36, ...) lies inside
    (_, _, _, fg, _), _ = _assign(TaskAlignedAssigner(num_classes=3, stride=(8, 16)), tiny, [0])
    assert fg.sum().item() == 4  # 8.4 widens it to 16 px for candidate selection
    (_, _, _, fg, _), _ = _assign(TaskAlignedAssigner(num_classes=3, stride=None), tiny, [0])
    assert fg.sum().item() == 0

    anchors = _grid()
    out = TaskAlignedAssigner(num_classes=3)(
        torch.rand(2, len(anchors), 3), torch.rand(2, len(anchors), 4), anchors, torch.zeros(2, 0, 1),
        torch.zeros(2, 0, 4), torch.zeros(2, 0, 1),
    )  # fmt: skip
    labels, boxes, scores, fg, gt_idx = out
    assert (labels == 3).all() and not fg.any() and scores.abs().sum() == 0 and boxes.shape == (2, len(anchors), 4)


# ----------------------------------------------------------------------------------------------------------- loss
class _FakeHead(nn.Module):
    """The attributes of a Detect head that the loss reads."""

    def __init__(self, nc=3, reg_max=16):
        super().__init__()
        self.nc, self.reg_max, self.no = nc, reg_max, nc + 4 * reg_max
        self.stride = torch.tensor([8.0, 16.0, 32.0])


class _FakeModel(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.model = nn.ModuleList([_FakeHead()])
        self.args = args


def _feats(seed=0, size=64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, 67, size // s, size // s, generator=g) * scale).requires_grad_() for s in (8, 16, 32)]


BATCH = {
    "batch_idx": torch.tensor([0.0, 0, 1]),
    "cls": torch.tensor([[0.0], [2], [1]]),
    "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.3], [0.25, 0.3, 0.2, 0.2], [0.6, 0.4, 0.5, 0.5]]),
}


def test_dfl_and_bbox_loss_by_hand():
    dfl = DFLoss(reg_max=4)
    uniform = torch.zeros(4, 4)  # 4 sides x 4 bins, all logits equal
    assert dfl(uniform, torch.full((1, 4), 1.25)).item() == pytest.approx(math.log(4))
    peaked = torch.full((4, 4), -20.0)
    peaked[:, 1], peaked[:, 2] = math.log(0.75), math.log(0.25)  # softmax ~ (0, .75, .25, 0)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))  # CE to bins 1 and 2 weighted .75 / .25
    assert dfl(peaked, torch.full((1, 4), 1.25)).item() == pytest.approx(expected, abs=1e-4)

    box = torch.tensor([[[2.0, 2, 6, 6]]])
    fg, scores = torch.tensor([[True]]), torch.tensor([[[0.0, 0.8]]])
    loss_iou, loss_dfl = BboxLoss(16)(torch.zeros(1, 1, 64), box, torch.tensor([[4.0, 4]]), box, scores, 1.0, fg)
    assert loss_iou.item() == pytest.approx(0.0, abs=1e-5)
    assert loss_dfl.item() == pytest.approx(0.8 * math.log(16), abs=1e-4)  # uniform bins, weight = score sum


def test_detection_loss_value_shape_and_gradient():
    crit = v8DetectionLoss(_FakeModel(SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)))
    feats = _feats()
    total, items = crit(feats, BATCH)
    assert total.ndim == 0 and torch.isfinite(total) and total.item() > 0
    assert items.shape == (3,) and not items.requires_grad and (items > 0).all()
    assert total.item() == pytest.approx(items.sum().item() * 2, rel=1e-5)  # x batch size
    total.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)

    feats = [f.detach() for f in feats]
    same, _ = crit((torch.zeros(1), feats), BATCH)  # eval-style (y, x) tuple
    dict_form = {
        "feats": feats,
        "boxes": torch.cat([f.view(2, 67, -1)[:, :64] for f in feats], 2),
        "scores": torch.cat([f.view(2, 67, -1)[:, 64:] for f in feats], 2),
    }
    as_dict, _ = crit(dict_form, BATCH)
    assert same.item() == pytest.approx(total.item(), rel=1e-6) and as_dict.item() == pytest.approx(total.item())

    half = v8DetectionLoss(_FakeModel({"box": 3.75, "cls": 0.25, "dfl": 0.75}))(feats, BATCH)[1]
    assert half == pytest.approx(items / 2, rel=1e-5)  # gains read from a dict too


def test_detection_loss_without_targets():
    crit = v8DetectionLoss(_FakeModel(SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)))
    empty = {"batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4)}
    total, items = crit(_feats(), empty)
    assert torch.isfinite(total) and items[0] == 0 and items[2] == 0 and items[1] > 0
    total.backward()


def _positive_iou(crit, feats):
    """Mean IoU of the assigned anchors' decoded boxes with their targets."""
    _, (fg, _, target_bboxes) = crit.loss_and_assignment(feats, BATCH)
    _, distri, _ = crit.parse_preds(feats)
    anchors, strides = make_anchors(feats, crit.stride)
    boxes = crit.bbox_decode(anchors, distri) * strides
    return bbox_iou(boxes[fg], target_bboxes[fg], xywh=False).mean().item()


def test_detection_loss_decreases_when_optimised():
    crit = v8DetectionLoss(_FakeModel(SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)))
    feats = _feats(seed=1, scale=0.1)
    optimiser = torch.optim.Adam(feats, lr=0.1)
    first, first_iou = None, _positive_iou(crit, feats)
    for _ in range(20):
        optimiser.zero_grad()
        total, items = crit(feats, BATCH)
        first = items.clone() if first is None else first
        total.backward()
        optimiser.step()
    assert items.sum() < 0.5 * first.sum()
    # box terms are normalised by IoU-dependent target scores, so judge the boxes themselves: they fit better
    assert _positive_iou(crit, feats) > first_iou + 0.2


# ----------------------------------------------------------------------------------------------------------- plots
def test_plots_are_written(tmp_path):
    images = torch.rand(3, 3, 64, 80)
    out = [torch.tensor([[10.0, 10, 40, 40, 0.9, 0]]), torch.zeros(0, 6), torch.tensor([[5.0, 5, 30, 50, 0.5, 1]])]
    pred = plotting.plot_images(images, *plotting.output_to_target(out), fname=tmp_path / "val_batch0_pred.jpg")
    labels = plotting.plot_images(
        images, torch.tensor([0, 2]), torch.tensor([0, 1]), torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]]),
        paths=["a.jpg", "b.jpg", "c.jpg"], fname=tmp_path / "val_batch0_labels.jpg", names={0: "cat", 1: "dog"},
    )  # fmt: skip
    assert pred.is_file() and labels.is_file()

    x = np.linspace(0, 1, 1000)
    curve = plotting.plot_mc_curve(x, np.random.rand(2, 1000), tmp_path / "BoxF1_curve.png", {0: "a"}, ylabel="F1")
    assert curve.is_file() and curve.stat().st_size > 0
