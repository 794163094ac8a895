"""Training and validation plots: PR / metric-confidence curves, confusion matrix, results.csv and image mosaics.

Matplotlib is imported inside the functions and drawn on an explicit Agg canvas (never ``pyplot``), so plotting
works headless and never changes the process-wide backend. Boxes and text on image mosaics are drawn with cv2.
"""

import colorsys
import csv
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from ultralytics.utils.metrics import smooth
from ultralytics.utils.ops import xywh2xyxy, xyxy2xywh


# --------------------------------------------------------------------------------------------------------- helpers
def _figure(figsize=(9, 6)):
    """A matplotlib Figure bound to an Agg canvas, independent of any pyplot backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, tight_layout=True)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, on_plot=None, data=None, dpi=250):
    """Write the figure to ``path`` and notify ``on_plot``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    if on_plot:
        on_plot(path, data or {})
    return path


def color(i, bgr=False):
    """A distinct, stable colour for class ``i`` as a 0-255 tuple (hues spaced by the golden ratio)."""
    r, g, b = (round(255 * v) for v in colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.8, 0.95))
    return (b, g, r) if bgr else (r, g, b)


def _numpy(x):
    """Tensor or array-like to a numpy array."""
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# ----------------------------------------------------------------------------------------------------------- curves
def plot_pr_curve(px, py, ap, save_dir=Path("pr_curve.png"), names=None, on_plot=None):
    """Precision-recall curve at IoU 0.5 of each class and of their mean.

    Args:
        px (np.ndarray): (1000,) recall grid.
        py (np.ndarray | list): (nc, 1000) precision of each class on that grid.
        ap (np.ndarray): (nc, 10) AP per class and IoU threshold; column 0 goes in the legend.
        save_dir (Path): output file (``BoxPR_curve.png`` in validation).
        names (dict, optional): names of the plotted classes by row.
        on_plot (callable, optional): called with the saved path.
    """
    names = names or {}
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    py = np.stack(py, axis=1)  # (1000, nc)
    if 0 < len(names) < 21:  # a legend entry per class only while it stays readable
        for i, y in enumerate(py.T):
            ax.plot(px, y, linewidth=1, label=f"{names.get(i, i)} {ap[i, 0]:.3f}")
    else:
        ax.plot(px, py, linewidth=1, color="grey")
    mean_ap50 = ap[:, 0].mean() if len(ap) else 0.0
    ax.plot(px, py.mean(1), linewidth=3, color="blue", label=f"all classes {mean_ap50:.3f} mAP@0.5")
    _finish(ax, "Recall", "Precision", "Precision-Recall Curve")
    return _save(fig, save_dir, on_plot, {"type": "pr_curve"})


def plot_mc_curve(
    px, py, save_dir=Path("mc_curve.png"), names=None, xlabel="Confidence", ylabel="Metric", on_plot=None
):
    """A metric (F1, precision or recall) against confidence for each class and their smoothed mean.

    Args:
        px (np.ndarray): (1000,) confidence grid.
        py (np.ndarray): (nc, 1000) metric of each class.
        save_dir (Path): output file (``BoxF1_curve.png``, ``BoxP_curve.png``, ``BoxR_curve.png`` in validation).
        names (dict, optional): names of the plotted classes by row.
        xlabel (str): x-axis label.
        ylabel (str): y-axis label, also used in the title.
        on_plot (callable, optional): called with the saved path.
    """
    names = names or {}
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    if 0 < len(names) < 21:
        for i, y in enumerate(py):
            ax.plot(px, y, linewidth=1, label=f"{names.get(i, i)}")
    else:
        ax.plot(px, py.T, linewidth=1, color="grey")
    y = smooth(py.mean(0), 0.1)
    ax.plot(px, y, linewidth=3, color="blue", label=f"all classes {y.max():.2f} at {px[y.argmax()]:.3f}")
    _finish(ax, xlabel, ylabel, f"{ylabel}-Confidence Curve")
    return _save(fig, save_dir, on_plot, {"type": f"{ylabel.lower()}_curve"})


def _finish(ax, xlabel, ylabel, title):
    """Shared axis limits, labels and legend placement of the curve plots."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left")
    ax.set_title(title)


def plot_confusion_matrix(matrix, names, normalize=True, save_dir="", on_plot=None):
    """Draw a detection confusion matrix (with the background row/column) and save it.

    Args:
        matrix (np.ndarray): (nc + 1, nc + 1) counts indexed [predicted, true].
        names (list[str]): class names (background is appended).
        normalize (bool): divide each column (true class) by its total.
        save_dir (str | Path): output folder.
        on_plot (callable, optional): called with the saved path.

    Returns:
        (Path): ``confusion_matrix_normalized.png`` or ``confusion_matrix.png`` in ``save_dir``.
    """
    array = matrix / ((matrix.sum(0).reshape(1, -1) + 1e-9) if normalize else 1)
    array[array < 0.005] = np.nan  # leave near-empty cells blank rather than writing 0.00
    n = array.shape[0]
    labels = [*list(names), "background"] if 0 < n < 99 and len(names) == n - 1 else None
    fig = _figure((12, 9))
    ax = fig.add_subplot(1, 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an all-NaN matrix warns when its colour range is computed
        image = ax.imshow(array, cmap="Blues", vmin=0.0, interpolation="none")
        if n < 30:
            _annotate_cells(ax, array, normalize)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.05)
    title = "Confusion Matrix" + " Normalized" * normalize
    ax.set_xlabel("True")
    ax.set_ylabel("Predicted")
    ax.set_title(title)
    if labels:
        ticks = np.arange(n)
        ax.set_xticks(ticks, labels, rotation=90, fontsize=max(6, 15 - 0.1 * n))
        ax.set_yticks(ticks, labels, fontsize=max(6, 15 - 0.1 * n))
    return _save(fig, Path(save_dir) / f"{title.lower().replace(' ', '_')}.png", on_plot, {"type": "confusion_matrix"})


def _annotate_cells(ax, array, normalize):
    """Write each non-empty cell's value, in white on dark cells."""
    threshold = 0.45 * (1 if normalize else np.nanmax(array) if np.isfinite(array).any() else 1)
    for (i, j), value in np.ndenumerate(array):
        if np.isnan(value):
            continue
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        ax.text(j, i, text, ha="center", va="center", fontsize=10, color="white" if value > threshold else "black")


# ---------------------------------------------------------------------------------------------------- results.csv
RESULT_COLUMNS = (  # the 2 x 5 grid upstream draws for detection, in order
    "train/box_loss",
    "train/cls_loss",
    "train/dfl_loss",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "val/box_loss",
    "val/cls_loss",
    "val/dfl_loss",
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
)


def _read_csv(file):
    """results.csv as {column: float array}; blank or non-numeric cells become NaN."""
    with open(file, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]] if rows else []
    columns = {h: [] for h in header}
    for row in rows[1:]:
        for h, cell in zip(header, row):
            try:
                columns[h].append(float(cell))
            except ValueError:
                columns[h].append(float("nan"))
    return {h: np.array(v, dtype=float) for h, v in columns.items()}


def _gaussian_smooth(y, sigma=3.0):
    """1-D Gaussian smoothing with mirrored edges (like scipy's ``gaussian_filter1d`` default), for trend lines."""
    radius = int(4 * sigma + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    padded = np.pad(y, radius, mode="symmetric")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")


def plot_results(file="results.csv", on_plot=None):
    """Plot training curves from a results.csv into ``results.png`` beside it.

    Args:
        file (str | Path): a results.csv with upstream's column names (``epoch``, ``train/box_loss`` ...).
        on_plot (callable, optional): called with the saved path.

    Returns:
        (Path): the saved ``results.png``.
    """
    file = Path(file)
    data = _read_csv(file)
    epochs = data.get("epoch", np.arange(len(next(iter(data.values()), []))))
    fig = _figure((12, 6))
    for i, name in enumerate(RESULT_COLUMNS):
        ax = fig.add_subplot(2, 5, i + 1)
        ax.set_title(name, fontsize=12)
        y = data.get(name)
        if y is None or not np.isfinite(y).any():
            continue
        finite = np.isfinite(y)
        ax.plot(epochs[finite], y[finite], marker=".", label=file.stem, linewidth=2, markersize=8)
        ax.plot(epochs[finite], _gaussian_smooth(y[finite]), ":", label="smooth", linewidth=2)
        if i == 0:
            ax.legend()
    return _save(fig, file.with_name("results.png"), on_plot, {"type": "results"}, dpi=200)


# ------------------------------------------------------------------------------------------------------ mosaics
def output_to_target(output, max_det=300):
    """Flatten NMS output into (batch_idx, cls, xywh boxes, conf) numpy arrays for ``plot_images``."""
    idx, cls, boxes, conf = [], [], [], []
    for i, det in enumerate(output):
        det = det[:max_det, :6].detach().cpu()
        idx.append(torch.full((det.shape[0],), i, dtype=torch.float32))
        cls.append(det[:, 5])
        boxes.append(xyxy2xywh(det[:, :4]))
        conf.append(det[:, 4])
    if not idx:
        return np.zeros(0), np.zeros(0), np.zeros((0, 4)), np.zeros(0)
    return tuple(torch.cat(x, 0).numpy() for x in (idx, cls, boxes, conf))


def plot_images(
    images,
    batch_idx,
    cls,
    bboxes=None,
    confs=None,
    paths=None,
    fname="images.jpg",
    names=None,
    on_plot=None,
    max_size=1920,
    max_subplots=16,
    conf_thres=0.25,
):
    """Save a labelled mosaic of up to 16 batch images (``train_batch0.jpg``, ``val_batch0_labels.jpg`` ...).

    Args:
        images (torch.Tensor | np.ndarray): (B, 3, H, W) RGB images, 0-1 floats or 0-255.
        batch_idx (array-like): (n,) image index of each box.
        cls (array-like): (n,) class of each box.
        bboxes (array-like, optional): (n, 4) xywh boxes, normalised (all <= 1.1) or in pixels.
        confs (array-like, optional): (n,) confidences; when given, boxes at or below ``conf_thres`` are skipped and
            the confidence is printed after the class name.
        paths (list[str], optional): image files, whose names are written on each tile.
        fname (str | Path): output image.
        names (dict | list, optional): class names.
        on_plot (callable, optional): called with the saved path.
        max_size (int): longest side of the mosaic.
        max_subplots (int): images drawn at most.
        conf_thres (float): confidence threshold for predictions.

    Returns:
        (Path): the saved file.
    """
    images = _numpy(images).astype(np.float32)
    if images.size and images.max() <= 1:
        images = images * 255
    batch_idx, cls = _numpy(batch_idx).reshape(-1), _numpy(cls).reshape(-1)
    bboxes = np.zeros((0, 4)) if bboxes is None else _numpy(bboxes).reshape(-1, 4)
    confs = None if confs is None else _numpy(confs).reshape(-1)
    names = dict(names) if isinstance(names, dict) else dict(enumerate(names or ()))

    bs, _, h, w = images.shape
    bs = min(bs, max_subplots)
    ns = math.ceil(bs**0.5)  # tiles per side
    scale = min(1.0, max_size / ns / max(h, w))
    th, tw = math.ceil(h * scale), math.ceil(w * scale)
    mosaic = np.full((ns * th, ns * tw, 3), 255, dtype=np.uint8)
    for i in range(bs):
        tile = images[i].transpose(1, 2, 0).clip(0, 255).astype(np.uint8)
        x0, y0 = tw * (i % ns), th * (i // ns)
        mosaic[y0 : y0 + th, x0 : x0 + tw] = cv2.resize(tile, (tw, th)) if scale < 1 else tile

    line = max(round(sum(mosaic.shape[:2]) / 2 * 0.003), 2)
    for i in range(bs):
        x0, y0 = tw * (i % ns), th * (i // ns)
        cv2.rectangle(mosaic, (x0, y0), (x0 + tw, y0 + th), (255, 255, 255), 2)
        if paths is not None and i < len(paths):
            _text(mosaic, Path(paths[i]).name[:40], (x0 + 5, y0 + 5), (220, 220, 220), line)
        sel = batch_idx == i
        _draw_boxes(mosaic, bboxes[sel], cls[sel], None if confs is None else confs[sel], (x0, y0, tw, th, scale),
                    names, conf_thres, line)  # fmt: skip

    fname = Path(fname)
    fname.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(fname), cv2.cvtColor(mosaic, cv2.COLOR_RGB2BGR))
    if on_plot:
        on_plot(fname, {"type": "images"})
    return fname


def _draw_boxes(mosaic, boxes, classes, confs, tile, names, conf_thres, line):
    """Draw one tile's boxes, mapping normalised or pixel xywh into the tile at (x0, y0) of size (tw, th)."""
    if not len(boxes):
        return
    x0, y0, tw, th, scale = tile
    boxes = boxes.astype(np.float64).copy()
    if boxes.max() <= 1.1:  # normalised
        boxes[:, [0, 2]] *= tw
        boxes[:, [1, 3]] *= th
    elif scale < 1:
        boxes *= scale
    boxes = xywh2xyxy(boxes)
    boxes[:, [0, 2]] += x0
    boxes[:, [1, 3]] += y0
    for j, box in enumerate(boxes):
        conf = None if confs is None else float(confs[j])
        if conf is not None and conf <= conf_thres:
            continue
        c = int(classes[j])
        label = f"{names.get(c, c)}" + ("" if conf is None else f" {conf:.1f}")
        p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
        cv2.rectangle(mosaic, p1, p2, color(c), line // 2 or 1, cv2.LINE_AA)
        _text(mosaic, label, (p1[0], max(p1[1] - 2 * line - 8, 0)), color(c), line)


def _text(img, text, origin, bg, line):
    """Write ``text`` on a filled ``bg`` box whose top-left corner is ``origin``."""
    scale, thickness = max(line / 4, 0.4), max(line // 3, 1)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = origin
    cv2.rectangle(img, (x, y), (x + w + 2, y + h + base + 2), bg, -1, cv2.LINE_AA)
    fg = (0, 0, 0) if sum(bg) > 382 else (255, 255, 255)
    cv2.putText(img, text, (x + 1, y + h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, fg, thickness, cv2.LINE_AA)
