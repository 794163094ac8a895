"""Prediction results with upstream Ultralytics' API: ``Results`` per image and the ``Boxes`` it holds.

``model.predict(...)`` returns one ``Results`` per image or video frame. Boxes stay in the original image's pixels,
so they can be drawn on ``orig_img`` or written out without knowing how the network input was letterboxed. Every
accessor works on torch tensors and on numpy arrays alike (``results.numpy()``), as upstream's do.

This module imports ``utils`` only (it sits in ``engine``, below ``models``).
"""

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from ultralytics.utils.ops import clip_boxes, xywh2xyxy, xyxy2xywh
from ultralytics.utils.plotting import color

__all__ = ("BaseTensor", "Boxes", "Results", "save_one_box")


def _copy(x):
    """An independent copy of a tensor or array, so derived formats never write into the stored data."""
    return x.clone() if isinstance(x, torch.Tensor) else np.copy(x)


class BaseTensor:
    """A tensor or array tied to the shape of the image it describes, movable between devices and numpy.

    Args:
        data (torch.Tensor | np.ndarray): The values, one row per instance.
        orig_shape (tuple): (height, width) of the original image; used for normalised coordinates.
    """

    def __init__(self, data, orig_shape):
        """Keep ``data`` as it is (no copy), so results stay cheap to build for every video frame."""
        if not isinstance(data, (torch.Tensor, np.ndarray)):
            raise TypeError(f"{type(self).__name__} data must be a torch.Tensor or np.ndarray, not {type(data)}")
        self.data = data
        self.orig_shape = tuple(orig_shape)

    @property
    def shape(self):
        """Shape of the underlying data, e.g. (n, 6) for boxes."""
        return self.data.shape

    def _new(self, data):
        """The same kind of object around other data; subclasses with extra constructor state override it."""
        return type(self)(data, self.orig_shape)

    def cpu(self):
        """A copy on the CPU (numpy data is returned as it is)."""
        return self if isinstance(self.data, np.ndarray) else self._new(self.data.cpu())

    def numpy(self):
        """A copy with numpy data, for code that wants no torch at all."""
        return self if isinstance(self.data, np.ndarray) else self._new(self.data.cpu().numpy())

    def cuda(self):
        """A copy on the default CUDA device."""
        return self._new(torch.as_tensor(self.data).cuda())

    def to(self, *args, **kwargs):
        """A copy moved or cast like ``torch.Tensor.to``."""
        return self._new(torch.as_tensor(self.data).to(*args, **kwargs))

    def __len__(self):
        """Number of instances (rows)."""
        return len(self.data)

    def __iter__(self):
        """One single-row object per instance, e.g. ``for box in result.boxes: box.xyxy``."""
        return (self[i] for i in range(len(self)))

    def __getitem__(self, idx):
        """The instances selected by an index, slice or mask, as the same kind of object."""
        data = self.data[idx]
        return self._new(data[None] if data.ndim == 1 else data)


class Boxes(BaseTensor):
    """Detection boxes of one image: rows ``[x1, y1, x2, y2, conf, cls]`` (or ``[..., track_id, conf, cls]``).

    Args:
        boxes (torch.Tensor | np.ndarray): (n, 6) or (n, 7) rows in original-image pixels; one row may be 1-D.
        orig_shape (tuple): (height, width) of the original image.

    Raises:
        ValueError: When rows do not have 6 or 7 values.
    """

    def __init__(self, boxes, orig_shape):
        """Check the row layout; a single 1-D row is promoted to a one-row table."""
        if boxes.ndim == 1:
            boxes = boxes[None, :]
        if boxes.shape[-1] not in {6, 7}:
            raise ValueError(f"Boxes rows need 6 values (x1, y1, x2, y2, conf, cls) or 7 with a track id, got "
                             f"{boxes.shape[-1]}")  # fmt: skip
        super().__init__(boxes, orig_shape)
        self.is_track = boxes.shape[-1] == 7

    @property
    def xyxy(self):
        """(n, 4) corner coordinates in pixels."""
        return self.data[:, :4]

    @property
    def conf(self):
        """(n,) confidences."""
        return self.data[:, -2]

    @property
    def cls(self):
        """(n,) class indices (as floats, like upstream)."""
        return self.data[:, -1]

    @property
    def id(self):
        """(n,) track ids, or None when the boxes do not come from a tracker."""
        return self.data[:, -3] if self.is_track else None

    @property
    def xywh(self):
        """(n, 4) centre x, centre y, width, height in pixels."""
        return xyxy2xywh(self.xyxy)

    @property
    def xyxyn(self):
        """(n, 4) corners divided by the original width and height."""
        return self._normalise(_copy(self.xyxy))

    @property
    def xywhn(self):
        """(n, 4) centre and size divided by the original width and height (the YOLO label format)."""
        return self._normalise(xyxy2xywh(self.xyxy))

    def _normalise(self, xy):
        """Divide x columns by the width and y columns by the height, in place on an already-copied table."""
        h, w = self.orig_shape
        xy[..., [0, 2]] /= w
        xy[..., [1, 3]] /= h
        return xy


def save_one_box(xyxy, im, file=Path("im.jpg"), gain=1.02, pad=10, square=False, BGR=True, save=True):
    """Crop one box (grown by ``gain`` and ``pad`` pixels so the object's edges survive) out of an image.

    Args:
        xyxy (torch.Tensor | np.ndarray | list): The box corners in pixels.
        im (np.ndarray): HxWx3 BGR image to crop from.
        file (Path): Where to write the crop; an existing file is not overwritten (a number is appended).
        gain (float): Size multiplier applied to the box width and height.
        pad (int): Pixels added to the width and height after ``gain``.
        square (bool): Grow the shorter side to make the crop square.
        BGR (bool): Return BGR (True) or RGB.
        save (bool): Write the crop as JPEG.

    Returns:
        (np.ndarray): The crop.
    """
    from ultralytics.utils.files import increment_path

    b = xyxy2xywh(torch.as_tensor(xyxy, dtype=torch.float32).view(-1, 4))
    if square:
        b[:, 2:] = b[:, 2:].max(1, keepdim=True)[0]
    b[:, 2:] = b[:, 2:] * gain + pad
    box = clip_boxes(xywh2xyxy(b), im.shape).long()[0].tolist()
    crop = im[box[1] : box[3], box[0] : box[2], :: (1 if BGR else -1)]
    if save:
        file = increment_path(file, mkdir=False)
        file.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(file.with_suffix(".jpg")), np.ascontiguousarray(crop))
    return crop


class Results:
    """Predictions for one image or video frame, with helpers to draw, save and summarise them.

    Args:
        orig_img (np.ndarray): The original HxWx3 BGR image the boxes refer to.
        path (str): Where the image came from (a file path, or ``image0.jpg`` for in-memory images).
        names (dict): Class names by index.
        boxes (torch.Tensor | np.ndarray, optional): (n, 6) rows ``[x1, y1, x2, y2, conf, cls]`` in pixels.
        speed (dict, optional): Milliseconds per image for ``preprocess``, ``inference`` and ``postprocess``.

    Attributes:
        boxes (Boxes | None): The detections.
        masks, probs, keypoints, obb: Always None in this detection-only fork; present so code written for
            upstream's other tasks (``if r.masks is not None``) keeps working.
    """

    def __init__(self, orig_img, path, names, boxes=None, speed=None):
        """Wrap the detections; the image is referenced, not copied."""
        self.orig_img = orig_img
        self.orig_shape = orig_img.shape[:2]
        self.boxes = Boxes(boxes, self.orig_shape) if boxes is not None else None
        self.masks = self.probs = self.keypoints = self.obb = None
        self.speed = speed if speed is not None else {"preprocess": None, "inference": None, "postprocess": None}
        self.names = names
        self.path = path
        self.save_dir = None

    def __len__(self):
        """Number of detections."""
        return 0 if self.boxes is None else len(self.boxes)

    def __getitem__(self, idx):
        """A Results holding only the selected detections."""
        return self._with_boxes(None if self.boxes is None else self.boxes[idx])

    def __repr__(self):
        """Short description: class, source and detection count."""
        return f"{type(self).__name__}(path={self.path!r}, orig_shape={self.orig_shape}, detections={len(self)})"

    def _with_boxes(self, boxes):
        """A new Results for the same image and metadata around ``boxes`` (a Boxes object or None)."""
        r = self.new()
        r.boxes = boxes
        return r

    def new(self):
        """An empty Results for the same image, path, names and speed."""
        r = Results(self.orig_img, self.path, self.names, speed=self.speed)
        r.save_dir = self.save_dir
        return r

    def update(self, boxes=None):
        """Replace the boxes (clipped to the image, as upstream does); None leaves them as they are."""
        if boxes is not None:
            self.boxes = Boxes(clip_boxes(boxes, self.orig_shape), self.orig_shape)

    def cpu(self):
        """A copy whose boxes are on the CPU."""
        return self._with_boxes(None if self.boxes is None else self.boxes.cpu())

    def numpy(self):
        """A copy whose boxes are numpy arrays."""
        return self._with_boxes(None if self.boxes is None else self.boxes.numpy())

    def cuda(self):
        """A copy whose boxes are on CUDA."""
        return self._with_boxes(None if self.boxes is None else self.boxes.cuda())

    def to(self, *args, **kwargs):
        """A copy whose boxes were moved or cast like ``torch.Tensor.to``."""
        return self._with_boxes(None if self.boxes is None else self.boxes.to(*args, **kwargs))

    # ------------------------------------------------------------------------------------------------- text
    def verbose(self):
        """Per-class counts as upstream logs them, e.g. ``'2 RBCs, 1 WBC, '``, or ``'(no detections), '``."""
        if not len(self):
            return "(no detections), "
        counts = np.bincount(np.asarray(self.boxes.cpu().cls, dtype=np.int64))
        return "".join(f"{n} {self.names[c]}{'s' * (n > 1)}, " for c, n in enumerate(counts.tolist()) if n)

    def summary(self, normalize=False, decimals=5):
        """One dict per detection: ``{name, class, confidence, box: {x1, y1, x2, y2}}`` (plus ``track_id``).

        Args:
            normalize (bool): Divide box coordinates by the image width and height.
            decimals (int): Digits kept after rounding, so the output is stable to compare and small to store.

        Returns:
            (list[dict]): The detections, most confident first (the order NMS returns).
        """
        if not len(self):
            return []
        h, w = self.orig_shape if normalize else (1, 1)
        out = []
        for (x1, y1, x2, y2), conf, c, track_id in self._rows("xyxy"):
            row = {"name": self.names[c], "class": c, "confidence": round(conf, decimals),
                   "box": {"x1": round(x1 / w, decimals), "y1": round(y1 / h, decimals),
                           "x2": round(x2 / w, decimals), "y2": round(y2 / h, decimals)}}  # fmt: skip
            if track_id is not None:
                row["track_id"] = track_id
            out.append(row)
        return out

    def _rows(self, fmt):
        """Plain-Python rows ``(coords in fmt, conf, cls, track_id or None)``, read from the device in one go."""
        boxes = self.boxes.cpu()
        coords = np.asarray(getattr(boxes, fmt)).tolist()
        conf, cls = np.asarray(boxes.conf).tolist(), np.asarray(boxes.cls).astype(int).tolist()
        ids = np.asarray(boxes.id).astype(int).tolist() if boxes.is_track else [None] * len(cls)
        return zip(coords, conf, cls, ids)

    def to_json(self, normalize=False, decimals=5):
        """The ``summary`` as a JSON string (a list of detection objects)."""
        return json.dumps(self.summary(normalize=normalize, decimals=decimals), indent=2)

    # ------------------------------------------------------------------------------------------------ files
    def save_txt(self, txt_file, save_conf=False):
        """Append detections in YOLO label format, one ``cls cx cy w h [conf] [track_id]`` line each, normalised.

        Appending (not overwriting) is upstream's behaviour, so several frames can share one file; the predictor
        deletes a previous run's file before writing. Nothing is written when there are no detections.

        Args:
            txt_file (str | Path): The label file.
            save_conf (bool): Add each box's confidence, e.g. to review low-confidence labels.

        Returns:
            (str): ``txt_file``.
        """
        if not len(self):
            return str(txt_file)
        lines = []
        for coords, conf, c, track_id in self._rows("xywhn"):
            values = (c, *coords, *((conf,) * save_conf), *(() if track_id is None else (track_id,)))
            lines.append(" ".join(f"{v:g}" for v in values))
        Path(txt_file).parent.mkdir(parents=True, exist_ok=True)
        with open(txt_file, "a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        return str(txt_file)

    def save_crop(self, save_dir, file_name=Path("im.jpg")):
        """Save each detection's crop as ``save_dir/<class name>/<file_name>.jpg`` (save_one_box only slices)."""
        if not len(self):
            return
        stem = Path(file_name).with_suffix(".jpg")
        for box in self.boxes.cpu():
            save_one_box(box.xyxy[0], self.orig_img, file=Path(save_dir) / self.names[int(box.cls[0])] / stem)

    def save(self, filename=None, **kwargs):
        """Draw the detections (``plot`` options in ``kwargs``) and write the image; returns the file name."""
        filename = filename or f"results_{Path(self.path).name}"
        Path(filename).absolute().parent.mkdir(parents=True, exist_ok=True)
        self.plot(save=True, filename=filename, **kwargs)
        return filename

    def show(self, **kwargs):
        """Draw the detections and display them in a window (needs a display)."""
        self.plot(show=True, **kwargs)

    # ------------------------------------------------------------------------------------------------- draw
    def plot(self, conf=True, labels=True, boxes=True, line_width=None, font_size=None, img=None, show=False,
             save=False, filename=None, color_mode="class", txt_color=None):  # fmt: skip
        """Draw boxes and ``name conf`` labels on a copy of the image; returns the annotated BGR array.

        Args:
            conf (bool): Add the confidence to each label.
            labels (bool): Draw the label text.
            boxes (bool): Draw anything at all for the boxes (False returns a plain copy).
            line_width (int, optional): Box line width in pixels; by default it grows with the image size.
            font_size (float, optional): Label text height in pixels; by default it follows ``line_width``.
            img (np.ndarray, optional): Draw on this BGR image (same size) instead of ``orig_img``; it is modified.
            show (bool): Also display the result in a window.
            save (bool): Also write the result to ``filename``.
            filename (str, optional): Output file for ``save``.
            color_mode (str): 'class' (one colour per class, stable across images) or 'instance' (per box).
            txt_color (tuple, optional): BGR label text colour; by default black or white, whichever reads better.

        Returns:
            (np.ndarray): The annotated HxWx3 BGR image.
        """
        if color_mode not in {"class", "instance"}:
            raise ValueError(f"color_mode must be 'class' or 'instance', got {color_mode!r}")
        canvas = np.ascontiguousarray(self.orig_img).copy() if img is None else img
        if boxes and len(self):
            style = _Style(canvas.shape, line_width, font_size, txt_color)
            for i, (xyxy, score, c, track_id) in reversed(list(enumerate(self._rows("xyxy")))):
                text = self._label(c, score, track_id, conf) if labels else ""
                style.box(canvas, xyxy, text, color(c if color_mode == "class" else i, bgr=True))
        if show:
            cv2.imshow(str(self.path), canvas)
            cv2.waitKey(1)
        if save and filename:
            cv2.imwrite(str(filename), canvas)
        return canvas

    def _label(self, c, score, track_id, with_conf):
        """Label text: ``[id:N ]name[ 0.87]``."""
        name = ("" if track_id is None else f"id:{track_id} ") + str(self.names[c])
        return f"{name} {score:.2f}" if with_conf else name


class _Style:
    """Box and label drawing with sizes derived once per image, so all boxes of an image look alike."""

    def __init__(self, shape, line_width, font_size, txt_color):
        """Line width defaults to ~0.3% of the mean image side (at least 2 px), as upstream's annotator."""
        self.lw = int(line_width or max(round(sum(shape[:2]) / 2 * 0.003), 2))
        self.thickness = max(self.lw - 1, 1)
        # cv2's Hershey font is ~22 px tall at scale 1; without font_size, text scales with the line width.
        self.scale = font_size / 22 if font_size else self.lw / 3
        self.txt_color = txt_color

    def box(self, im, xyxy, text, bgr):
        """Draw one rectangle and, when ``text`` is set, a filled label above it (inside when at the top edge)."""
        p1, p2 = (int(xyxy[0]), int(xyxy[1])), (int(xyxy[2]), int(xyxy[3]))
        cv2.rectangle(im, p1, p2, bgr, thickness=self.lw, lineType=cv2.LINE_AA)
        if not text:
            return
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, self.scale, self.thickness)
        th += 3
        x = min(p1[0], max(im.shape[1] - tw, 0))  # keep the label inside the right edge
        above = p1[1] >= th
        top, bottom = (p1[1] - th, p1[1]) if above else (p1[1], p1[1] + th)
        cv2.rectangle(im, (x, top), (x + tw, bottom), bgr, -1, cv2.LINE_AA)
        fg = self.txt_color or ((0, 0, 0) if 0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2] > 150 else (255,) * 3)
        cv2.putText(im, text, (x, bottom - 2), cv2.FONT_HERSHEY_SIMPLEX, self.scale, fg, self.thickness, cv2.LINE_AA)
