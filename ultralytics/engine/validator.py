"""The validation loop shared by task validators: model and data setup, timing, progress bar and the final report.

Two ways in, as upstream:

- standalone, ``validator(model=model)``: the model (a ``DetectionModel`` or a ``.pt`` path) is copied, fused and put
  on ``args.device``; the dataset of ``args.split`` is built from ``args.data``; the metrics dict is returned;
- during training, ``validator(trainer)``: the trainer's EMA model, device, data and val dataloader are used as they
  are, the validation loss is accumulated too, and metrics plus ``val/*`` losses come back rounded to 5 decimals.

Task specifics (preprocessing, NMS, matching, metrics, plots) are the hooks that subclasses such as
``models/yolo/detect/val.py`` fill in. This module imports ``utils``, ``nn``, ``data`` and ``cfg`` only.
"""

import contextlib
import math
import time
from copy import deepcopy
from pathlib import Path

import torch
from tqdm import tqdm

from ultralytics.cfg import get_cfg
from ultralytics.data import check_det_dataset
from ultralytics.utils import LOGGER, RANK, colorstr
from ultralytics.utils.files import increment_path
from ultralytics.utils.metrics import match_predictions
from ultralytics.utils.torch_utils import de_parallel, select_device

TQDM_BAR_FORMAT = "{l_bar}{bar:10}{r_bar}"  # upstream's compact bar, so logs line up with theirs


class Timer:
    """Accumulate the wall time of a ``with`` block, waiting for queued CUDA work so GPU time is not hidden.

    Args:
        device (torch.device, optional): The device whose kernels must finish before the clock is read.
    """

    def __init__(self, device=None):
        """Start at zero seconds."""
        self.t = 0.0
        self.cuda = device is not None and torch.device(device).type == "cuda"
        self.start = 0.0

    def __enter__(self):
        """Start the clock."""
        self._sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        """Add the elapsed time."""
        self._sync()
        self.t += time.perf_counter() - self.start

    def _sync(self):
        if self.cuda:
            torch.cuda.synchronize()


HALF_VALUES = frozenset({"16", "fp16", "half"})  # the quantize values that mean fp16 (validator and exporter)


def wants_half(args):
    """True when the arguments ask for fp16 inference (8.4's ``quantize=16``, or a legacy ``half=True``)."""
    quantize = getattr(args, "quantize", None) if not isinstance(args, dict) else args.get("quantize")
    legacy = getattr(args, "half", False) if not isinstance(args, dict) else args.get("half", False)
    return str(quantize).lower() in HALF_VALUES or bool(legacy)


def check_val_imgsz(imgsz, stride):
    """Return one square size that is a multiple of ``stride``, rounding up (with a warning) as upstream does."""
    size = max(imgsz) if isinstance(imgsz, (list, tuple)) else int(imgsz)
    fixed = max(math.ceil(size / stride) * stride, stride)
    if fixed != size:
        LOGGER.warning(f"imgsz={imgsz} must be a multiple of max stride {stride}, updating to {fixed}")
    return fixed


class BaseValidator:
    """Run a model over a dataloader and report task metrics; subclasses supply the task hooks.

    Args:
        dataloader (torch.utils.data.DataLoader, optional): The loader to evaluate (the trainer passes its val
            loader); standalone runs build one from ``args.data`` / ``args.split`` when it is None.
        save_dir (Path, optional): Output folder; defaults to ``runs/<task>/val`` incremented (``val2``...).
        args (dict | SimpleNamespace, optional): Overrides of ``cfg/default.yaml``.

    Attributes:
        args (IterableSimpleNamespace): The merged arguments (``conf`` None becomes 0.001, as upstream).
        training (bool): True while called by a trainer.
        device (torch.device): Where inference runs.
        data (dict): The ``check_det_dataset`` dict.
        names (dict[int, str]): Class names.
        stride (int): Model max stride (rect batch shapes are multiples of it).
        speed (dict[str, float]): Milliseconds per image of preprocess, inference, loss and postprocess.
        plots (dict): Saved plot paths, for loggers.
    """

    def __init__(self, dataloader=None, save_dir=None, args=None):
        """Merge the arguments and choose (and create) the output folder, like upstream does on construction."""
        self.args = get_cfg(overrides=args)
        self.dataloader = dataloader
        self.training = True
        self.device = None
        self.data = None
        self.names = None
        self.nc = None
        self.stride = None
        self.batch_i = None
        self.seen = 0
        self.loss = None
        self.half = False
        self.iouv = torch.linspace(0.5, 0.95, 10)
        self.speed = {"preprocess": 0.0, "inference": 0.0, "loss": 0.0, "postprocess": 0.0}
        self.plots = {}
        if self.args.conf is None:
            self.args.conf = 0.001  # validation keeps low-confidence boxes so the PR curve reaches high recall
        self.save_dir = Path(save_dir) if save_dir else self.default_save_dir(self.args)
        self.save_dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def default_save_dir(args):
        """``<project or runs/<task>>/<name or val>``, numbered when taken unless ``exist_ok``."""
        project = Path(args.project or f"runs/{args.task or 'detect'}")
        exist_ok = args.exist_ok if RANK in {-1, 0} else True
        return increment_path(project / (args.name or "val"), exist_ok=exist_ok)

    # --------------------------------------------------------------------------------------------------- running
    def __call__(self, trainer=None, model=None):
        """Validate ``model`` (standalone) or the trainer's EMA model, and return the metrics.

        Args:
            trainer (BaseTrainer, optional): The calling trainer; switches to training mode.
            model (nn.Module | str | Path, optional): Standalone model, or a ``.pt`` checkpoint to load.

        Returns:
            (dict): ``metrics/*`` and ``fitness`` as floats; in training mode also the mean ``val/*`` losses, and
                every value rounded to 5 decimals (as upstream logs them to results.csv).
        """
        self.training = trainer is not None
        plots = self.args.plots  # training narrows it for this call only; restored below
        if self.training:
            model = self._setup_training(trainer)
            grad_off = torch.no_grad()  # inference tensors cached here would break later training steps
        else:
            model = self._setup_standalone(model)
            grad_off = torch.inference_mode()
        was_training = model.training
        model.eval()
        try:
            with grad_off:
                stats = self._run(model)
        finally:
            model.train(was_training)
            self.args.plots = plots
        if self.training:
            return self._training_results(stats, trainer)
        self._log_speed()
        if self.args.plots:
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}")
        return stats

    def _setup_training(self, trainer):
        """Adopt the trainer's device, data and EMA model; fp16 inputs under autocast only for AMP on CUDA."""
        self.device = trainer.device
        self.data = trainer.data
        self.half = self.device.type == "cuda" and bool(getattr(trainer, "amp", False))
        ema = getattr(trainer, "ema", None)
        model = ema.ema if ema is not None else de_parallel(trainer.model)
        model = model.float()  # weights stay fp32; autocast handles fp16 (never halve the EMA in place)
        self.loss = None
        stopper = getattr(trainer, "stopper", None)
        last_epoch = getattr(trainer, "epoch", 0) == getattr(trainer, "epochs", 1) - 1
        self.args.plots &= bool(getattr(stopper, "possible_stop", False) or last_epoch)  # plot only at the end
        self.names = getattr(model, "names", None) or self.data["names"]
        self.stride = max(int(de_parallel(model).stride.max()), 32)
        if self.dataloader is None:
            self.dataloader = self.get_dataloader(self.data.get(self.args.split) or self.data["val"], self.args.batch)
        return model

    def _setup_standalone(self, model):
        """Load/copy, fuse and place the model, then build the dataset of ``args.split``."""
        self.device = select_device(self.args.device, verbose=False)
        self.half = wants_half(self.args) and self.device.type == "cuda"  # fp16 kernels are CUDA-only here
        model = self._prepare_model(model)
        self.args.quantize = 16 if self.half else None  # record the precision actually used, as upstream
        self.stride = max(int(model.stride.max()), 32)
        self.args.imgsz = check_val_imgsz(self.args.imgsz, self.stride)
        self.data = check_det_dataset(self.args.data)
        if self.device.type in {"cpu", "mps"}:
            self.args.workers = 0  # CPU time goes to inference; worker start-up would only add latency
        self.names = self._model_names(model)
        if self.dataloader is None:
            split = self.data.get(self.args.split)
            if not split:
                raise FileNotFoundError(f"Dataset '{self.args.data}' has no '{self.args.split}' split")
            self.dataloader = self.get_dataloader(split, self.args.batch)
        if self.device.type == "cuda":  # first CUDA call pays for kernel selection; keep it out of the timings
            model(torch.zeros(1, 3, self.args.imgsz, self.args.imgsz, device=self.device, dtype=self._dtype()))
        return model

    def _prepare_model(self, model):
        """Return an inference copy: loaded from ``.pt`` if a path, fused, on the device, fp16 when asked."""
        model = model if model is not None else self.args.model
        if model is None:
            raise ValueError("validation needs a model: pass model=... or args.model")
        if isinstance(model, (str, Path)):
            from ultralytics.nn.tasks import attempt_load_one_weight

            model, _ = attempt_load_one_weight(model)
        else:
            model = deepcopy(de_parallel(model))  # fusing in place would change the caller's model
        model = model.to(self.device).float().requires_grad_(False)
        if hasattr(model, "fuse"):
            model = model.fuse(verbose=self.args.verbose)
        return model.half() if self.half else model

    def _model_names(self, model):
        """The model's class names, unless they are only the placeholders '0', '1'... and the dataset has real ones."""
        names = dict(getattr(model, "names", None) or {})
        placeholders = all(str(k) == str(v) for k, v in names.items())
        return self.data["names"] if not names or (placeholders and len(self.data["names"]) == len(names)) else names

    def _dtype(self):
        return torch.float16 if self.half else torch.float32

    def _autocast(self):
        """fp16 autocast for AMP training validation on CUDA; a no-op otherwise."""
        if self.training and self.half:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _run(self, model):
        """Iterate the loader: preprocess, infer, (loss), NMS, metrics and the first three batches' plots."""
        timers = [Timer(self.device) for _ in self.speed]
        bar = tqdm(self.dataloader, desc=self.get_desc(), total=len(self.dataloader), bar_format=TQDM_BAR_FORMAT,
                   disable=RANK > 0)  # fmt: skip
        self.init_metrics(de_parallel(model))
        for batch_i, batch in enumerate(bar):
            self.batch_i = batch_i
            with timers[0]:
                batch = self.preprocess(batch)
            with self._autocast():
                with timers[1]:
                    preds = model(batch["img"])
                with timers[2]:
                    if self.training:
                        self._accumulate_loss(model, batch, preds)
            with timers[3]:
                preds = self.postprocess(preds)
            self.update_metrics(preds, batch)
            if self.args.plots and batch_i < 3 and RANK in {-1, 0}:
                self.plot_val_samples(batch, batch_i)
                self.plot_predictions(batch, preds, batch_i)
        bar.close()
        stats = self.get_stats()
        n = max(len(self.dataloader.dataset), 1)
        self.speed = dict(zip(self.speed, (t.t / n * 1e3 for t in timers)))
        self.finalize_metrics()
        self.print_results()
        return stats

    def _accumulate_loss(self, model, batch, preds):
        """Add this batch's loss items, computed from the raw per-level maps of the eval forward."""
        maps = preds[1] if isinstance(preds, (list, tuple)) else preds
        items = de_parallel(model).loss(batch, maps)[1].detach()
        self.loss = items.clone() if self.loss is None else self.loss + items

    def _training_results(self, stats, trainer):
        """Metrics plus mean val losses named by the trainer, rounded to 5 decimals as upstream logs them."""
        loss = (self.loss if self.loss is not None else torch.zeros(len(trainer.label_loss_items()))).float().cpu()
        results = {**stats, **trainer.label_loss_items(loss / max(len(self.dataloader), 1), prefix="val")}
        return {k: round(float(v), 5) for k, v in results.items()}

    def _log_speed(self):
        LOGGER.info(
            "Speed: {:.1f}ms preprocess, {:.1f}ms inference, {:.1f}ms loss, {:.1f}ms postprocess per image".format(
                *self.speed.values()
            )
        )

    def match_predictions(self, pred_classes, true_classes, iou):
        """True-positive flags (N, 10) of predictions sorted by confidence against the truths at ``self.iouv``."""
        return match_predictions(pred_classes, true_classes, iou, self.iouv)

    def on_plot(self, name, data=None):
        """Remember a saved plot (loggers read ``self.plots``)."""
        self.plots[Path(name)] = {"data": data, "timestamp": time.time()}

    # ------------------------------------------------------------------------------------------ task hooks
    def get_dataloader(self, dataset_path, batch_size):
        """Build the loader of a split."""
        raise NotImplementedError("get_dataloader() is defined by task validators")

    def preprocess(self, batch):
        """Prepare a batch for the model."""
        return batch

    def postprocess(self, preds):
        """Turn raw model output into per-image predictions."""
        return preds

    def init_metrics(self, model):
        """Reset the metric state before a run."""

    def update_metrics(self, preds, batch):
        """Add one batch's predictions and labels to the statistics."""

    def get_stats(self):
        """Compute and return the metrics dict."""
        return {}

    def finalize_metrics(self):
        """Attach speed and plots to the metrics object."""

    def print_results(self):
        """Log the metrics table."""

    def get_desc(self):
        """Progress-bar header."""
        return ""

    def plot_val_samples(self, batch, ni):
        """Plot a batch's labels."""

    def plot_predictions(self, batch, preds, ni):
        """Plot a batch's predictions."""
