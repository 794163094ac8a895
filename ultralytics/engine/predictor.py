"""The prediction loop shared by task predictors: sources, letterbox preprocessing, inference, saving and logging.

Usage, as upstream::

    predictor = DetectionPredictor(overrides={"conf": 0.25})
    results = predictor(source="images/", model=model)  # list of Results
    for r in predictor(source="video.mp4", model=model, stream=True):  # generator: one Results at a time
        ...

Task specifics (turning raw outputs into ``Results``) live in ``postprocess``, which subclasses such as
``models/yolo/detect/predict.py`` fill in. With ``stream=True`` nothing is kept between batches, so a long video
runs in constant memory. Outputs (annotated images or videos, ``labels/*.txt``, crops) go to
``<project or runs/detect>/<name or predict>``, numbered when taken. This module imports ``utils``, ``nn``,
``data`` and ``cfg`` (plus sibling ``engine`` modules), never ``models``.
"""

import math
import os
import platform
import re
import sys
import threading
from collections import defaultdict
from copy import deepcopy
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ultralytics.cfg import DEFAULT_CFG_PATH, get_cfg
from ultralytics.data.augment import LetterBox
from ultralytics.data.loaders import load_inference_source
from ultralytics.engine.validator import Timer, wants_half
from ultralytics.nn.autobackend import AutoBackend
from ultralytics.utils import LOGGER, colorstr
from ultralytics.utils.files import increment_path
from ultralytics.utils.torch_utils import select_device

STREAM_WARNING = (
    "inference results accumulate in memory unless `stream=True` is passed, which can exhaust memory on long "
    "videos. Use `for r in model.predict(source, stream=True): ...` to process one frame at a time."
)
CALLBACK_EVENTS = (
    "on_predict_start",
    "on_predict_batch_start",
    "on_predict_postprocess_end",
    "on_predict_batch_end",
    "on_predict_end",
)
SPEED_KEYS = ("preprocess", "inference", "postprocess")
UNSUPPORTED_FLAGS = ("augment", "visualize", "embed")  # accepted by upstream's cfg, not implemented by this fork


def launched_from_cli(argv=None):
    """True when this process is ``yolo predict ...`` (or ``ultralytics``, or ``python -m ultralytics``).

    Upstream saves prediction images by default only on the command line; Python calls have to ask with
    ``save=True``. The CLI is recognised the way upstream recognises it, from the program name and the mode word.
    """
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    prog = Path(argv[0])
    names = {prog.stem, prog.name}
    is_cli = bool(names & {"yolo", "ultralytics"}) or (prog.name == "__main__.py" and prog.parent.name == "ultralytics")
    return is_cli and any(a in {"predict", "track", "mode=predict", "mode=track"} for a in argv[1:])


def can_show():
    """True when cv2 can open a window: a display is present and OpenCV was built with GUI support.

    Checked before ``show=True`` runs, because a headless OpenCV raises on the first frame and a GUI build without
    a display can abort the whole process.
    """
    if platform.system() == "Linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.imshow("ultralytics", np.zeros((8, 8, 3), dtype=np.uint8))
        cv2.waitKey(1)
        cv2.destroyAllWindows()
        return True
    except cv2.error:
        return False


def predict_fallbacks(overrides):
    """Upstream's predict-mode defaults for keys the caller left out (default.yaml's values are for training).

    ``batch`` is 1, as upstream's ``model.predict`` sets it, and ``save`` is True only on the command line. (``conf``
    is filled in later, because default.yaml holds it as None rather than leaving it out.)
    """
    fallbacks = {"batch": 1, "save": launched_from_cli()}
    return {k: v for k, v in fallbacks.items() if k not in overrides}


def check_imgsz(imgsz, stride):
    """``imgsz`` as ``[h, w]``, each rounded up to a multiple of ``stride`` (with a warning when changed).

    Args:
        imgsz (int | list | tuple | str): 640, [480, 640] or their text forms.
        stride (int): The model's largest stride.

    Returns:
        (list[int]): [h, w].
    """
    if isinstance(imgsz, str):
        imgsz = [int(v) for v in re.findall(r"\d+", imgsz)]
    sizes = [int(imgsz)] if isinstance(imgsz, (int, float)) else [int(v) for v in imgsz]
    if len(sizes) not in {1, 2}:
        raise ValueError(f"imgsz={imgsz} is not a valid image size: use an int (640) or [h, w] ([480, 640])")
    fixed = [max(math.ceil(x / stride) * stride, stride) for x in sizes]
    if fixed != sizes:
        LOGGER.warning(f"imgsz={imgsz} must be multiple of max stride {stride}, updating to {fixed}")
    return fixed * 2 if len(fixed) == 1 else fixed


class _Stopwatch(Timer):
    """A Timer that also keeps the duration of its last block, for per-batch speeds."""

    dt = 0.0

    def __exit__(self, *exc):
        """Record the last block's duration next to the running total."""
        before = self.t
        super().__exit__(*exc)
        self.dt = self.t - before


class BasePredictor:
    """Run a model over images, folders, globs, videos or in-memory images, yielding one ``Results`` per image.

    Args:
        cfg (str | Path | dict): Base configuration; default.yaml by default.
        overrides (dict, optional): Arguments that win over ``cfg`` (``conf``, ``iou``, ``imgsz``, ``save``...).
        _callbacks (dict, optional): ``{event: [functions]}`` to register, as upstream's callback hooks.

    Attributes:
        args (IterableSimpleNamespace): The merged arguments.
        save_dir (Path): Output folder (created only when something is saved).
        model (AutoBackend): The inference backend (a fused copy of a PyTorch model, or an exported file).
        results (list[Results]): The current batch's results (nothing older is kept).
        speed (dict): Mean milliseconds per image for preprocess, inference and postprocess after a run.
    """

    def __init__(self, cfg=DEFAULT_CFG_PATH, overrides=None, _callbacks=None):
        """Merge the arguments and choose the output folder (not yet created)."""
        overrides = dict(overrides or {})
        overrides.update(predict_fallbacks(overrides))
        self.args = get_cfg(cfg, overrides)
        if self.args.conf is None:
            self.args.conf = 0.25  # default.yaml leaves it empty: 0.25 for predict, 0.001 for val
        self.save_dir = self.default_save_dir(self.args)
        self.model = self.device = self.imgsz = self.stride = None
        self.dataset = self.source_type = None
        self.batch = self.results = self.plotted_img = self.txt_path = None
        self.seen, self.speed, self.stream = 0, None, False
        self.vid_writer = {}
        self.windows = []
        self._bases, self._sources = set(), {}
        self.callbacks = defaultdict(list)
        for event, funcs in (_callbacks or {}).items():
            self.callbacks[event].extend(funcs)
        self._lock = threading.Lock()  # one run at a time per predictor, as upstream

    @staticmethod
    def default_save_dir(args):
        """``<project or runs/<task>>/<name or predict>``, numbered when taken unless ``exist_ok``."""
        project = Path(args.project or f"runs/{args.task or 'detect'}")
        return increment_path(project / (args.name or "predict"), exist_ok=args.exist_ok)

    # --------------------------------------------------------------------------------------------- entry points
    def __call__(self, source=None, model=None, stream=False):
        """Predict on ``source``: a list of Results, or a generator of them with ``stream=True``.

        Args:
            source: An image/video file, folder, glob, numpy BGR array, PIL image or a list of them; defaults to
                ``args.source``.
            model (nn.Module | str | Path, optional): The model or a ``.pt`` file; defaults to ``args.model``.
            stream (bool): Return a generator, which keeps memory flat on long videos and large folders.
        """
        self.stream = stream
        if stream:
            return self.stream_inference(source, model)
        return list(self.stream_inference(source, model))

    def predict_cli(self, source=None, model=None):
        """Run to the end without collecting results (the CLI only needs the saved files and logs)."""
        for _ in self.stream_inference(source, model):
            pass

    # ------------------------------------------------------------------------------------------------- set-up
    def setup_model(self, model, verbose=False):
        """Wrap the model (an ``nn.Module``, or a ``.pt``/``.onnx``/``.torchscript`` file) in an ``AutoBackend``.

        A model object is copied before ``AutoBackend`` fuses Conv+BN into it, so ``YOLO.train()`` after
        ``predict()`` still trains the unfused layers.
        """
        model = model if model is not None else self.args.model
        if model is None:
            raise ValueError("predict needs a model: an nn.Module, or a .pt, .onnx or .torchscript file")
        self.device = select_device(self.args.device, verbose=verbose)
        if isinstance(model, AutoBackend):
            self.model = model
        else:
            if isinstance(model, nn.Module):
                model = deepcopy(model)
            elif not isinstance(model, (str, Path)):
                raise TypeError(f"model must be an nn.Module or a model file path, not {type(model).__name__}")
            self.model = AutoBackend(model, device=self.device, fp16=wants_half(self.args), fuse=True, verbose=verbose)
        self.model.eval()
        self.stride = int(self.model.stride)
        for flag in UNSUPPORTED_FLAGS:
            if self.args.get(flag):
                LOGGER.warning(f"'{flag}' is not supported by this fork's predictor and is ignored.")
                setattr(self.args, flag, None if flag == "embed" else False)

    def setup_source(self, source):
        """Check ``imgsz`` against the stride and open the source's loader.

        A fixed-size export can only take the size it was exported at, so its ``imgsz`` replaces the argument.
        """
        if self.model.imgsz and not self.model.dynamic:
            self.args.imgsz = list(self.model.imgsz)
        self.imgsz = check_imgsz(self.args.imgsz, self.stride)
        self.dataset = load_inference_source(source, batch=self.args.batch, vid_stride=self.args.vid_stride)
        self.source_type = self.dataset.source_type
        if self.args.show and not can_show():
            LOGGER.warning("show=True needs a display and an OpenCV build with GUI support; not showing results.")
            self.args.show = False
        if not self.stream and any(getattr(self.dataset, "video_flag", [False])):
            LOGGER.warning(STREAM_WARNING)
        self.vid_writer = {}

    # ------------------------------------------------------------------------------------------------- stages
    def pre_transform(self, im):
        """Letterbox each image to ``imgsz``.

        As upstream, a batch of same-shaped images gets the minimum rectangle (padding only up to a multiple of
        the stride) when ``rect`` is on, which ``model.predict`` sets, and the model accepts any size (PyTorch or
        a dynamic export); otherwise the full ``imgsz`` rectangle.
        """
        same_shapes = len({x.shape for x in im}) == 1
        any_size = self.model.format == "pt" or self.model.dynamic
        letterbox = LetterBox(self.imgsz, auto=same_shapes and bool(self.args.rect) and any_size, stride=self.stride)
        return [letterbox(image=x) for x in im]

    def preprocess(self, im):
        """BGR uint8 HxWx3 images to an RGB float (N, 3, H, W) tensor in 0-1 on the model's device."""
        im = self.pre_transform(im)
        x = im[0][None] if len(im) == 1 else np.stack(im)
        # BGR to RGB and BHWC to BCHW in numpy: its strided uint8 copy is 2-5× faster than torch's flip + contiguous
        x = torch.from_numpy(np.ascontiguousarray(x[..., ::-1].transpose(0, 3, 1, 2))).to(self.device)
        return (x.half() if self.model.fp16 else x.float()) / 255

    def inference(self, im):
        """The model's raw output for a preprocessed batch."""
        return self.model(im)

    def postprocess(self, preds, img, orig_imgs):
        """Turn raw outputs into Results; task predictors override this."""
        return preds

    # --------------------------------------------------------------------------------------------------- loop
    @torch.inference_mode()
    def stream_inference(self, source=None, model=None):
        """Yield one Results per image or frame, saving and logging along the way.

        ``torch.inference_mode`` wraps each resumption of this generator only, so a caller's own code between
        results runs with its usual autograd state.
        """
        if self.model is None:
            self.setup_model(model)
        with self._lock:
            self.setup_source(source if source is not None else self.args.source)
            if self.args.save or self.args.save_txt:
                (self.save_dir / "labels" if self.args.save_txt else self.save_dir).mkdir(parents=True, exist_ok=True)
            self.seen, self.windows, self.batch, self._bases, self._sources = 0, [], None, set(), {}
            profilers = tuple(_Stopwatch(self.device) for _ in range(3))
            shape = None
            self.run_callbacks("on_predict_start")
            try:
                for batch in self.dataset:
                    self.batch = batch
                    shape = yield from self._run_batch(profilers)
            finally:  # also runs when a stream=True consumer stops early or an error aborts the loop
                self._release()
            self._log_speed(profilers, shape)
        self._log_saved()
        self.run_callbacks("on_predict_end")

    def _run_batch(self, profilers):
        """Process one batch and yield its Results; returns the network input shape for the speed log."""
        self.run_callbacks("on_predict_batch_start")
        paths, im0s, infos = self.batch
        with profilers[0]:
            im = self.preprocess(im0s)
        with profilers[1]:
            preds = self.inference(im)
        with profilers[2]:
            self.results = self.postprocess(preds, im, im0s)
        self.run_callbacks("on_predict_postprocess_end")
        n, lines = len(im0s), list(infos)
        speed = {k: p.dt * 1e3 / n for k, p in zip(SPEED_KEYS, profilers)}
        for i in range(n):
            self.seen += 1
            self.results[i].speed = dict(speed)
            if self.args.verbose or self.args.save or self.args.save_txt or self.args.save_crop or self.args.show:
                lines[i] += self.write_results(i, Path(paths[i]), im, lines)
        if self.args.verbose:
            LOGGER.info("\n".join(lines))
        self.run_callbacks("on_predict_batch_end")
        yield from self.results
        return tuple(im.shape)

    # ------------------------------------------------------------------------------------------------ outputs
    def _output_base(self, i, p):
        """File stem for outputs of batch item ``i``: the source's stem, made unique with ``-2``, ``-3``..."""
        key = p if self.dataset.mode == "video" else i
        if self.dataset.mode == "image" or key not in self._sources:
            base, k = p.stem, 1
            while base in self._bases:  # a.jpg and a.png, or dir1/v.mp4 and dir2/v.mp4, must not overwrite
                k += 1
                base = f"{p.stem}-{k}"
            self._bases.add(base)
            self._sources[key] = base
        return self._sources[key]

    def write_results(self, i, p, im, lines):
        """Log, draw and save the results of batch item ``i``; returns the text to append to its log line."""
        text = f"{i}: " if self.source_type.from_img else ""
        frame = None
        if self.dataset.mode == "video":
            match = re.search(r"frame (\d+)/", lines[i])
            frame = int(match[1]) if match else None
        base = self._output_base(i, p)
        self.txt_path = self.save_dir / "labels" / (base + ("" if self.dataset.mode == "image" else f"_{frame}"))
        result = self.results[i]
        result.save_dir = str(self.save_dir)
        text += "{:g}x{:g} ".format(*im.shape[2:]) + f"{result.verbose()}{result.speed['inference']:.1f}ms"
        if self.args.save or self.args.show:
            self.plotted_img = result.plot(line_width=self.args.line_width, boxes=self.args.show_boxes,
                                           conf=self.args.show_conf, labels=self.args.show_labels)  # fmt: skip
        if self.args.save_txt:
            Path(f"{self.txt_path}.txt").unlink(missing_ok=True)  # replace, not append to, a previous run's file
            result.save_txt(f"{self.txt_path}.txt", save_conf=self.args.save_conf)
        if self.args.save_crop:
            result.save_crop(save_dir=self.save_dir / "crops", file_name=f"{self.txt_path.name}.jpg")
        if self.args.show:
            self.show(str(p))
        if self.args.save:
            self.save_predicted_images(self.save_dir / (base + p.suffix), frame)
        return text

    def save_predicted_images(self, save_path, frame=0):
        """Write the annotated image as JPEG, or append the frame to the source video's output video."""
        im = self.plotted_img
        if self.dataset.mode != "video":
            cv2.imwrite(str(save_path.with_suffix(".jpg")), im)
            return
        if save_path not in self.vid_writer:
            fps = max(1.0, float(self.dataset.fps) / self.args.vid_stride)  # skipped frames keep the duration
            suffix, fourcc = (".mp4", "avc1") if platform.system() == "Darwin" else (".avi", "MJPG")
            self.vid_writer[save_path] = cv2.VideoWriter(str(save_path.with_suffix(suffix)),
                                                         cv2.VideoWriter_fourcc(*fourcc), fps,
                                                         (im.shape[1], im.shape[0]))  # fmt: skip
        self.vid_writer[save_path].write(im)
        if self.args.save_frames:
            frames_dir = self.save_dir / f"{save_path.stem}_frames"
            frames_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(frames_dir / f"{save_path.stem}_{frame}.jpg"), im)

    def show(self, p=""):
        """Display the annotated image in a window named after its source (needs a display)."""
        if p not in self.windows:
            self.windows.append(p)
            cv2.namedWindow(p, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(p, self.plotted_img.shape[1], self.plotted_img.shape[0])
        cv2.imshow(p, self.plotted_img)
        cv2.waitKey(300 if self.dataset.mode == "image" else 1)

    def _release(self):
        """Close video writers and the source so files are complete even when the loop stops early."""
        for writer in self.vid_writer.values():
            writer.release()
        self.vid_writer = {}
        if hasattr(self.dataset, "close"):
            self.dataset.close()
        if self.args.show:
            cv2.destroyAllWindows()

    def _log_speed(self, profilers, shape):
        """Log mean per-image times, as upstream: ``Speed: ...ms preprocess, ... per image at shape (...)``."""
        if not self.seen:
            return
        t = tuple(p.t / self.seen * 1e3 for p in profilers)
        self.speed = dict(zip(SPEED_KEYS, t))
        if self.args.verbose and shape is not None:
            at = (min(self.args.batch, self.seen), shape[1], *shape[2:])
            LOGGER.info(f"Speed: %.1fms preprocess, %.1fms inference, %.1fms postprocess per image at shape {at}" % t)

    def _log_saved(self):
        """Say where outputs went, as upstream: ``Results saved to runs/detect/predict`` (+ label count)."""
        if not (self.args.save or self.args.save_txt or self.args.save_crop):
            return
        extra = ""
        if self.args.save_txt:
            nl = len(list(self.save_dir.glob("labels/*.txt")))
            extra = f"\n{nl} label{'s' * (nl > 1)} saved to {self.save_dir / 'labels'}"
        LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}{extra}")

    # ---------------------------------------------------------------------------------------------- callbacks
    def add_callback(self, event, func):
        """Register ``func(predictor)`` to run at ``event`` (one of ``CALLBACK_EVENTS``)."""
        if event not in CALLBACK_EVENTS:
            raise ValueError(f"unknown predictor callback event '{event}'; valid events are {CALLBACK_EVENTS}")
        self.callbacks[event].append(func)

    def run_callbacks(self, event):
        """Call every function registered for ``event`` with this predictor."""
        for func in self.callbacks.get(event, []):
            func(self)
