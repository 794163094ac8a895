"""Box overlap measures and the detection metrics reported by validation (P, R, mAP50, mAP50-95, fitness).

The numbers follow upstream Ultralytics 8.4 exactly: COCO 101-point interpolated AP with the sentinel/envelope
construction, precision/recall/F1 taken at the confidence that maximises the box-filtered mean F1, and
``fitness = mAP50-95`` (weights ``[0, 0, 0, 1]`` over ``[P, R, mAP50, mAP50-95]``).
"""

import math
from pathlib import Path

import numpy as np
import torch

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # the ten COCO IoU thresholds behind mAP50-95


# ----------------------------------------------------------------------------------------------------------- overlaps
def _corners(box, xywh):
    """Split (..., 4) boxes into x1, y1, x2, y2 (each (..., 1)) whatever their format."""
    if xywh:
        x, y, w, h = box.chunk(4, -1)
        return x - w / 2, y - h / 2, x + w / 2, y + h / 2
    return box.chunk(4, -1)


def bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7):
    """Element-wise (broadcasting) IoU or one of its GIoU / DIoU / CIoU refinements.

    The loss and the assigner both call this with ``CIoU=True`` so that a box with the right overlap but the wrong
    centre or aspect ratio still receives a gradient. As upstream, ``eps`` is added to the heights of xyxy inputs (not
    xywh inputs) before the aspect-ratio term, and the CIoU trade-off ``alpha`` is treated as a constant.

    Args:
        box1 (torch.Tensor): boxes of shape (..., 4).
        box2 (torch.Tensor): boxes of shape (..., 4), broadcastable against ``box1``.
        xywh (bool): True for centre-x, centre-y, width, height; False for x1, y1, x2, y2.
        GIoU (bool): return Generalized IoU.
        DIoU (bool): return Distance IoU.
        CIoU (bool): return Complete IoU (takes precedence over DIoU and GIoU).
        eps (float): guard against division by zero.

    Returns:
        (torch.Tensor): values of shape (..., 1).
    """
    b1_x1, b1_y1, b1_x2, b1_y2 = _corners(box1, xywh)
    b2_x1, b2_y1, b2_x2, b2_y2 = _corners(box2, xywh)
    if xywh:
        w1, h1, w2, h2 = box1[..., 2:3], box1[..., 3:4], box2[..., 2:3], box2[..., 3:4]
    else:
        w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
        w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps

    inter_w = (b1_x2.minimum(b2_x2) - b1_x1.maximum(b2_x1)).clamp(0)
    inter_h = (b1_y2.minimum(b2_y2) - b1_y1.maximum(b2_y1)).clamp(0)
    inter = inter_w * inter_h
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if not (GIoU or DIoU or CIoU):
        return iou

    hull_w = b1_x2.maximum(b2_x2) - b1_x1.minimum(b2_x1)  # smallest enclosing box
    hull_h = b1_y2.maximum(b2_y2) - b1_y1.minimum(b2_y1)
    if CIoU or DIoU:
        diag2 = hull_w.pow(2) + hull_h.pow(2) + eps
        centre_dist2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2).pow(2) + (b2_y1 + b2_y2 - b1_y1 - b1_y2).pow(2)) / 4
        if not CIoU:
            return iou - centre_dist2 / diag2
        v = (4 / math.pi**2) * ((w2 / h2).atan() - (w1 / h1).atan()).pow(2)
        with torch.no_grad():
            alpha = v / (v - iou + (1 + eps))
        return iou - (centre_dist2 / diag2 + v * alpha)
    hull_area = hull_w * hull_h + eps
    return iou - (hull_area - union) / hull_area


def box_iou(box1, box2, eps=1e-7):
    """Pairwise IoU of two sets of xyxy boxes.

    Args:
        box1 (torch.Tensor): (N, 4) boxes.
        box2 (torch.Tensor): (M, 4) boxes.
        eps (float): guard against division by zero.

    Returns:
        (torch.Tensor): (N, M) IoU matrix.
    """
    top_left = torch.max(box1[:, None, :2], box2[None, :, :2])
    bottom_right = torch.min(box1[:, None, 2:], box2[None, :, 2:])
    inter = (bottom_right - top_left).clamp(0).prod(2)
    area1 = (box1[:, 2:] - box1[:, :2]).prod(1)
    area2 = (box2[:, 2:] - box2[:, :2]).prod(1)
    return inter / (area1[:, None] + area2[None, :] - inter + eps)


def bbox_ioa(box1, box2, iou=False, eps=1e-7):
    """Pairwise intersection over the area of ``box2`` (or IoU) for numpy xyxy boxes, used by copy-paste augmentation.

    Args:
        box1 (np.ndarray): (N, 4) boxes.
        box2 (np.ndarray): (M, 4) boxes.
        iou (bool): divide by the union instead of the area of ``box2``.
        eps (float): guard against division by zero.

    Returns:
        (np.ndarray): (N, M) matrix.
    """
    inter_w = (np.minimum(box1[:, None, 2], box2[None, :, 2]) - np.maximum(box1[:, None, 0], box2[None, :, 0])).clip(0)
    inter_h = (np.minimum(box1[:, None, 3], box2[None, :, 3]) - np.maximum(box1[:, None, 1], box2[None, :, 1])).clip(0)
    inter = inter_w * inter_h
    area = ((box2[:, 2] - box2[:, 0]) * (box2[:, 3] - box2[:, 1]))[None, :]
    if iou:
        area = area + ((box1[:, 2] - box1[:, 0]) * (box1[:, 3] - box1[:, 1]))[:, None] - inter
    return inter / (area + eps)


# ------------------------------------------------------------------------------------------------- matching to truth
def _best_per(pairs, scores, key):
    """Keep, for each value of column ``key`` of the (k, 2) index ``pairs``, the pair with the highest score.

    The survivors come back ordered by that column's value, as ``np.unique`` orders them; the matching rules below
    depend on that order.
    """
    order = scores.argsort()[::-1]
    pairs, scores = pairs[order], scores[order]
    keep = np.unique(pairs[:, key], return_index=True)[1]
    return pairs[keep], scores[keep]


def match_predictions(pred_classes, true_classes, iou, iouv=None):
    """Mark each prediction as a true positive or not at every IoU threshold, as upstream 8.4's validator does.

    Matching is greedy and one-to-one per threshold: predictions are visited in index order (NMS returns them sorted
    by decreasing confidence) and each claims the still-unclaimed truth of its class with the highest IoU; it is a
    true positive when that IoU reaches the threshold. A prediction whose best truth is already taken can therefore
    still match its second-best one, so a confident duplicate never hides a correct, less confident detection.

    Args:
        pred_classes (torch.Tensor): (N,) predicted classes, most confident first.
        true_classes (torch.Tensor): (M,) ground-truth classes.
        iou (torch.Tensor): (M, N) IoU of every truth with every prediction.
        iouv (torch.Tensor | np.ndarray, optional): IoU thresholds; the ten COCO ones by default.

    Returns:
        (torch.Tensor): (N, len(iouv)) bool matrix of true positives.
    """
    thresholds = IOU_THRESHOLDS if iouv is None else torch.as_tensor(iouv).cpu().numpy()
    thresholds = thresholds.astype(np.float32)  # compared in float32 like upstream, so IoU 0.9 passes 0.9
    correct = np.zeros((pred_classes.shape[0], len(thresholds)), dtype=bool)
    same_class = (true_classes[:, None] == pred_classes[None, :]).cpu().numpy()
    iou = iou.detach().cpu().float().numpy() * same_class
    claimed = np.zeros((iou.shape[0], len(thresholds)), dtype=bool)  # truth already matched, per threshold
    columns = np.arange(len(thresholds))
    for j in np.flatnonzero((iou >= thresholds.min()).any(0)):  # predictions that can match anything
        free = np.where(claimed, 0.0, iou[:, j, None])  # (M, T): IoU with each unclaimed truth
        best = free.argmax(0)
        correct[j] = free[best, columns] >= thresholds
        claimed[best[correct[j]], columns[correct[j]]] = True
    return torch.tensor(correct, dtype=torch.bool, device=pred_classes.device)


# --------------------------------------------------------------------------------------------------------- AP and F1
def smooth(y, f=0.05):
    """Box-filter ``y`` over a window of fraction ``f`` of its length, padding with the edge values."""
    n = round(len(y) * f * 2) // 2 + 1  # odd window
    pad = n // 2
    padded = np.concatenate((np.full(pad, y[0]), y, np.full(pad, y[-1])))
    return np.convolve(padded, np.ones(n) / n, mode="valid")


def _trapezoid(y, x):
    """Trapezoidal integral; ``np.trapz`` was renamed ``np.trapezoid`` in numpy 2."""
    integrate = getattr(np, "trapezoid", None) or np.trapz
    return integrate(y, x)


def compute_ap(recall, precision):
    """Average precision from one recall/precision curve with COCO 101-point interpolation.

    Sentinels close the curve: precision 1 at recall 0, and precision 0 from just after the last recall reached up
    to recall 1 (upstream 8.4 places a precision-0 point at the final recall, so recall never reached adds no area
    instead of a ramp down to recall 1). Precision is then replaced by its monotone upper envelope before
    integration. A perfect detector scores 0.995, not 1.0, exactly as upstream (the point at recall 1 takes the
    precision-0 sentinel).

    Args:
        recall (np.ndarray): recall after each prediction, non-decreasing.
        precision (np.ndarray): precision after each prediction.

    Returns:
        (float, np.ndarray, np.ndarray): AP, the precision envelope and the recall with sentinels.
    """
    last = recall[-1] if len(recall) else 1.0
    mrec = np.concatenate(([0.0], recall, [last, 1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0, 0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(_trapezoid(np.interp(x, mrec, mpre), x)), mpre, mrec


def _as_names(names):
    """Accept class names as a dict or a sequence and return a dict."""
    return dict(names) if isinstance(names, dict) else dict(enumerate(names or ()))


def ap_per_class(
    tp,
    conf,
    pred_cls,
    target_cls,
    plot=False,
    on_plot=None,
    save_dir=Path(),
    names=None,
    eps=1e-16,
    prefix="",
):
    """Per-class AP at every IoU threshold plus P, R and F1 at the best mean-F1 confidence.

    Args:
        tp (np.ndarray): (N, T) true-positive flags of every prediction at T IoU thresholds.
        conf (np.ndarray): (N,) confidences.
        pred_cls (np.ndarray): (N,) predicted classes.
        target_cls (np.ndarray): (M,) classes of all ground-truth boxes.
        plot (bool): save the PR and metric-confidence curves to ``save_dir``.
        on_plot (callable, optional): called with each saved plot's path and data.
        save_dir (Path): folder for the plots.
        names (dict | list, optional): class names for the plot legends.
        eps (float): guard against division by zero.
        prefix (str): plot file-name prefix; validation uses ``"Box"`` (``BoxPR_curve.png`` ...).

    Returns:
        (tuple): tp, fp, p, r, f1 (each (nc,) at the chosen confidence), ap (nc, T), unique classes (nc,),
            p_curve, r_curve, f1_curve (each (nc, 1000) over confidence), x (1000,) and prec_values (nc, 1000)
            (precision over recall at IoU 0.5), where nc counts the classes present in ``target_cls``.
    """
    tp = np.asarray(tp, dtype=float)
    tp = tp.reshape(len(conf), -1) if len(conf) else tp.reshape(0, tp.shape[-1] if tp.ndim == 2 else 10)
    order = np.argsort(-conf)
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    unique_classes, n_targets = np.unique(target_cls, return_counts=True)
    nc = unique_classes.shape[0]

    x, prec_values = np.linspace(0, 1, 1000), []
    ap = np.zeros((nc, tp.shape[1]))
    p_curve, r_curve = np.zeros((nc, 1000)), np.zeros((nc, 1000))
    for ci, c in enumerate(unique_classes):
        sel = pred_cls == c
        if not sel.any() or n_targets[ci] == 0:
            prec_values.append(np.zeros_like(x))  # keep PR rows aligned with ``ap`` and the legend names
            continue
        tpc = tp[sel].cumsum(0)
        fpc = (1 - tp[sel]).cumsum(0)
        recall = tpc / (n_targets[ci] + eps)
        precision = tpc / (tpc + fpc)
        r_curve[ci] = np.interp(-x, -conf[sel], recall[:, 0], left=0)  # confidence decreases along the curve
        p_curve[ci] = np.interp(-x, -conf[sel], precision[:, 0], left=1)
        for j in range(tp.shape[1]):
            ap[ci, j], mpre, mrec = compute_ap(recall[:, j], precision[:, j])
            if j == 0:
                prec_values.append(np.interp(x, mrec, mpre))

    prec_values = np.array(prec_values) if prec_values else np.zeros((1, 1000))
    f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    all_names = _as_names(names)
    names = {i: all_names[k] for i, k in enumerate(unique_classes) if k in all_names}
    if plot and nc:
        _plot_curves(x, prec_values, ap, f1_curve, p_curve, r_curve, Path(save_dir), names, prefix, on_plot)

    best = smooth(f1_curve.mean(0), 0.1).argmax() if nc else 0  # no labelled class: no curve to maximise
    p, r, f1 = p_curve[:, best], r_curve[:, best], f1_curve[:, best]
    tp_count = (r * n_targets).round()
    fp_count = (tp_count / (p + eps) - tp_count).round()
    return tp_count, fp_count, p, r, f1, ap, unique_classes.astype(int), p_curve, r_curve, f1_curve, x, prec_values


def _plot_curves(x, prec_values, ap, f1_curve, p_curve, r_curve, save_dir, names, prefix, on_plot):
    """Save the four validation curves with upstream's file names."""
    from ultralytics.utils.plotting import plot_mc_curve, plot_pr_curve

    plot_pr_curve(x, prec_values, ap, save_dir / f"{prefix}PR_curve.png", names, on_plot=on_plot)
    plot_mc_curve(x, f1_curve, save_dir / f"{prefix}F1_curve.png", names, ylabel="F1", on_plot=on_plot)
    plot_mc_curve(x, p_curve, save_dir / f"{prefix}P_curve.png", names, ylabel="Precision", on_plot=on_plot)
    plot_mc_curve(x, r_curve, save_dir / f"{prefix}R_curve.png", names, ylabel="Recall", on_plot=on_plot)


# ------------------------------------------------------------------------------------------------- metric containers
class Metric:
    """Per-class precision, recall, F1 and AP of one kind of prediction (boxes), with the means upstream reports.

    Attributes:
        p, r, f1 (np.ndarray | list): per-class values at the best-F1 confidence, (nc,).
        all_ap (np.ndarray | list): AP of each class at the ten IoU thresholds, (nc, 10).
        ap_class_index (np.ndarray | list): the class index behind each row above.
        nc (int): number of classes in the dataset (for ``maps``).
    """

    def __init__(self):
        """Start empty: every mean is 0 until ``update`` is called."""
        self.p, self.r, self.f1, self.all_ap, self.ap_class_index = [], [], [], [], []
        self.p_curve, self.r_curve, self.f1_curve, self.px, self.prec_values = [], [], [], [], []
        self.nc = 0

    @property
    def ap50(self):
        """AP at IoU 0.5 of each class."""
        return self.all_ap[:, 0] if len(self.all_ap) else []

    @property
    def ap(self):
        """AP averaged over IoU 0.5:0.95 of each class."""
        return self.all_ap.mean(1) if len(self.all_ap) else []

    @property
    def mp(self):
        """Mean precision over classes."""
        return float(self.p.mean()) if len(self.p) else 0.0

    @property
    def mr(self):
        """Mean recall over classes."""
        return float(self.r.mean()) if len(self.r) else 0.0

    @property
    def map50(self):
        """mAP at IoU 0.5."""
        return float(self.all_ap[:, 0].mean()) if len(self.all_ap) else 0.0

    @property
    def map75(self):
        """mAP at IoU 0.75."""
        return float(self.all_ap[:, 5].mean()) if len(self.all_ap) else 0.0

    @property
    def map(self):
        """mAP over IoU 0.5:0.95."""
        return float(self.all_ap.mean()) if len(self.all_ap) else 0.0

    def mean_results(self):
        """Return [mP, mR, mAP50, mAP50-95]."""
        return [self.mp, self.mr, self.map50, self.map]

    def class_result(self, i):
        """Return (P, R, AP50, AP50-95) of the i-th evaluated class."""
        return self.p[i], self.r[i], self.ap50[i], self.ap[i]

    @property
    def maps(self):
        """mAP50-95 per dataset class; classes never seen in the targets get the overall mAP."""
        maps = np.zeros(self.nc) + self.map
        for i, c in enumerate(self.ap_class_index):
            maps[c] = self.ap[i]
        return maps

    def fitness(self):
        """Model-selection score: 8.4 weights [P, R, mAP50, mAP50-95] by [0, 0, 0, 1], i.e. mAP50-95 alone."""
        weights = np.array([0.0, 0.0, 0.0, 1.0])
        return float((np.nan_to_num(np.array(self.mean_results())) * weights).sum())

    def update(self, results):
        """Store the ten per-class arrays that ``ap_per_class(...)[2:]`` returns."""
        (self.p, self.r, self.f1, self.all_ap, self.ap_class_index) = results[:5]
        (self.p_curve, self.r_curve, self.f1_curve, self.px, self.prec_values) = results[5:]

    @property
    def curves(self):
        """Curve names (none for a bare Metric)."""
        return []

    @property
    def curves_results(self):
        """(x, y, xlabel, ylabel) of the PR, F1, P and R curves."""
        return [
            [self.px, self.prec_values, "Recall", "Precision"],
            [self.px, self.f1_curve, "Confidence", "F1"],
            [self.px, self.p_curve, "Confidence", "Precision"],
            [self.px, self.r_curve, "Confidence", "Recall"],
        ]


class DetMetrics:
    """Accumulates validation statistics batch by batch and turns them into detection metrics (8.4 API).

    The validator calls ``update_stats`` once per image with a dict holding ``tp`` (n, 10), ``conf`` (n,),
    ``pred_cls`` (n,), ``target_cls`` (m,) and ``target_img`` (classes present in the image), then ``process``.

    Attributes:
        names (dict[int, str]): class names.
        box (Metric): the box metrics.
        speed (dict[str, float]): per-image milliseconds of each stage, filled in by the validator.
        stats (dict[str, list]): accumulated per-image arrays.
        nt_per_class (np.ndarray | None): number of ground-truth boxes per class.
        nt_per_image (np.ndarray | None): number of images containing each class.
    """

    def __init__(self, names=None):
        """Start with no statistics for the given class names."""
        self.names = _as_names(names)
        self.box = Metric()
        self.speed = {"preprocess": 0.0, "inference": 0.0, "loss": 0.0, "postprocess": 0.0}
        self.task = "detect"
        self.stats = {"tp": [], "conf": [], "pred_cls": [], "target_cls": [], "target_img": []}
        self.nt_per_class = None
        self.nt_per_image = None

    def update_stats(self, stat):
        """Append one image's arrays (numpy or tensors) to the accumulated statistics."""
        for key, values in self.stats.items():
            item = stat[key]
            values.append(item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item))

    def clear_stats(self):
        """Forget the accumulated statistics (between validation runs)."""
        for values in self.stats.values():
            values.clear()

    def process(self, save_dir=Path("."), plot=False, on_plot=None):
        """Compute the metrics from the accumulated statistics and return them concatenated.

        Args:
            save_dir (Path): folder for the ``Box*_curve.png`` plots.
            plot (bool): save the plots.
            on_plot (callable, optional): called with each saved plot.

        Returns:
            (dict[str, np.ndarray]): the concatenated statistics (empty if nothing was accumulated).
        """
        if not all(self.stats.values()):
            return {}
        stats = {k: np.concatenate(v, 0) for k, v in self.stats.items()}
        results = ap_per_class(
            stats["tp"],
            stats["conf"],
            stats["pred_cls"],
            stats["target_cls"],
            plot=plot,
            on_plot=on_plot,
            save_dir=Path(save_dir),
            names=self.names,
            prefix="Box",
        )[2:]
        self.box.nc = len(self.names)
        self.box.update(results)
        self.nt_per_class = np.bincount(stats["target_cls"].astype(int), minlength=len(self.names))
        self.nt_per_image = np.bincount(stats["target_img"].astype(int), minlength=len(self.names))
        return stats

    @property
    def keys(self):
        """The metric names, as they appear in results.csv."""
        return ["metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)"]

    def mean_results(self):
        """Return [mP, mR, mAP50, mAP50-95]."""
        return self.box.mean_results()

    def class_result(self, i):
        """Return (P, R, AP50, AP50-95) of the i-th evaluated class."""
        return self.box.class_result(i)

    @property
    def maps(self):
        """mAP50-95 per dataset class."""
        return self.box.maps

    @property
    def fitness(self):
        """Model-selection score (mAP50-95 in 8.4)."""
        return self.box.fitness()

    @property
    def ap_class_index(self):
        """Class index of each evaluated row."""
        return self.box.ap_class_index

    @property
    def results_dict(self):
        """The four metrics and fitness keyed as in results.csv."""
        values = [*self.mean_results(), self.fitness]
        return dict(zip([*self.keys, "fitness"], (float(v) for v in values)))

    @property
    def curves(self):
        """Names of the curves in ``curves_results``."""
        return ["Precision-Recall(B)", "F1-Confidence(B)", "Precision-Confidence(B)", "Recall-Confidence(B)"]

    @property
    def curves_results(self):
        """(x, y, xlabel, ylabel) of each curve."""
        return self.box.curves_results


# -------------------------------------------------------------------------------------------------- confusion matrix
class ConfusionMatrix:
    """Detection confusion matrix with a background row/column, as upstream draws it.

    ``matrix[predicted, true]``; index ``nc`` is background, so ``matrix[nc, c]`` counts missed class-c objects and
    ``matrix[c, nc]`` counts class-c detections that matched nothing.

    Attributes:
        nc (int): number of classes.
        conf (float): detections at or below this confidence are ignored.
        iou_thres (float): a detection matches a truth when their IoU exceeds this.
        matrix (np.ndarray): (nc + 1, nc + 1) counts.
    """

    def __init__(self, nc, conf=0.25, iou_thres=0.45, names=None):
        """Create an empty matrix; the validator's default conf (0.001, or None) is replaced by 0.25 as upstream."""
        self.nc = int(nc)
        self.conf = 0.25 if conf in {None, 0.001} else conf
        self.iou_thres = iou_thres
        self.names = _as_names(names) if names is not None else {i: str(i) for i in range(self.nc)}
        self.matrix = np.zeros((self.nc + 1, self.nc + 1))

    def process_batch(self, detections, gt_bboxes, gt_cls):
        """Add one image's detections and ground truth to the matrix.

        Args:
            detections (torch.Tensor | None): (N, 6) rows of x1, y1, x2, y2, conf, cls.
            gt_bboxes (torch.Tensor): (M, 4) xyxy ground-truth boxes in the same space as the detections.
            gt_cls (torch.Tensor): (M,) ground-truth classes.
        """
        gt_classes = gt_cls.int().view(-1).tolist()
        if detections is not None:
            detections = detections[detections[:, 4] > self.conf]
        det_classes = [] if detections is None else detections[:, 5].int().tolist()
        if detections is None or not gt_classes:
            for c in gt_classes:
                self.matrix[self.nc, c] += 1  # missed
            for c in det_classes:
                self.matrix[c, self.nc] += 1  # nothing to match
            return
        pairs = self._match(box_iou(gt_bboxes, detections[:, :4]))
        matched_dets = set(pairs[:, 1].tolist())
        truth_to_det = dict(pairs.tolist())
        for i, c in enumerate(gt_classes):
            row = det_classes[truth_to_det[i]] if i in truth_to_det else self.nc
            self.matrix[row, c] += 1
        for j, c in enumerate(det_classes):
            if j not in matched_dets:
                self.matrix[c, self.nc] += 1

    def _match(self, iou):
        """One-to-one (truth, detection) pairs: each detection keeps its best truth, then each truth its best one."""
        iou = iou.cpu().numpy()
        pairs = np.stack(np.nonzero(iou > self.iou_thres), 1)
        if len(pairs) > 1:
            pairs, scores = _best_per(pairs, iou[pairs[:, 0], pairs[:, 1]], key=1)
            pairs, _ = _best_per(pairs, scores, key=0)
        return pairs.astype(int).reshape(-1, 2)

    def tp_fp(self):
        """True positives (the diagonal) and false positives per class, background excluded."""
        tp = self.matrix.diagonal()
        fp = self.matrix.sum(1) - tp
        return tp[:-1], fp[:-1]

    def plot(self, normalize=True, save_dir="", names=None, on_plot=None):
        """Save ``confusion_matrix.png`` or ``confusion_matrix_normalized.png`` to ``save_dir``.

        Returns:
            (Path): the saved file.
        """
        from ultralytics.utils.plotting import plot_confusion_matrix

        names = list(_as_names(names).values()) if names is not None else list(self.names.values())
        return plot_confusion_matrix(self.matrix, names, normalize=normalize, save_dir=save_dir, on_plot=on_plot)
