"""Export a YOLO detection model to TorchScript or ONNX, with the metadata upstream's ``AutoBackend`` reads back.

Python:
    YOLO("best.pt").export(format="onnx", dynamic=True)  # -> 'best.onnx' beside best.pt

CLI:
    yolo export model=best.pt format=onnx imgsz=640 dynamic=True

Files are named after the weights (``best.pt`` → ``best.onnx`` / ``best.torchscript``, written beside the ``.pt``) or,
for a model built from a yaml, after the yaml (``yolo11n-dysample.onnx`` in the working directory), as upstream does.
Both formats are produced by tracing, so whatever depends on the input size must be computed from traced shapes:
``Detect.dynamic`` makes the head rebuild its anchors per call, and DySample rebuilds its sampling grid while tracing.

This module sits on the ``engine`` floor: it imports ``utils``, ``nn`` and ``cfg``, never ``models``.
"""

import inspect
import json
import time
import warnings
from contextlib import contextmanager
from copy import deepcopy
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from ultralytics import __version__
from ultralytics.cfg import get_cfg
from ultralytics.engine.validator import HALF_VALUES
from ultralytics.nn.modules import Detect
from ultralytics.nn.modules.Addmodules import DySample
from ultralytics.utils import DEFAULT_CFG_PATH, LOGGER, colorstr
from ultralytics.utils.checkpoint import names_dict

__all__ = ("EXPORT_FORMATS", "Exporter", "UPSTREAM_FORMATS", "export_formats")

# format argument -> (file suffix, export arguments it honours), as upstream's export_formats() table
EXPORT_FORMATS = {
    "torchscript": (".torchscript", ("batch", "optimize", "quantize", "dynamic")),
    "onnx": (".onnx", ("batch", "dynamic", "quantize", "opset", "simplify")),
}
PREFIXES = {"torchscript": colorstr("TorchScript:"), "onnx": colorstr("ONNX:")}  # log prefixes, upstream's
# upstream's other formats: recognised, so that asking for one says "not shipped here" rather than "unknown"
UPSTREAM_FORMATS = (
    "torchscript", "onnx", "openvino", "engine", "coreml", "saved_model", "pb", "tflite", "edgetpu", "tfjs", "paddle",
    "mnn", "ncnn", "imx", "rknn",
)  # fmt: skip
FORMAT_ALIASES = {"tensorrt": "engine", "trt": "engine", "mlmodel": "coreml", "mlpackage": "coreml"}
GRID_SAMPLE_MIN_OPSET = 16  # ONNX GridSample (used by DySample's F.grid_sample) first appears in opset 16
FULL_VALUES = frozenset({"none", "32", "fp32", "false"})
INT8_VALUES = frozenset({"8", "int8"})


def export_formats():
    """Return ``{format: (suffix, arguments)}`` for the formats this fork can export."""
    return dict(EXPORT_FORMATS)


def file_size(path):
    """Size of a file in MB (0.0 when it does not exist), for the log lines."""
    path = Path(path)
    return path.stat().st_size / 1e6 if path.is_file() else 0.0


def onnx_opset_range(model):
    """Return (lowest, highest) opset this torch can export ``model`` with.

    The highest is the TorchScript-based exporter's own limit (newer opsets have no symbolic functions there); the
    lowest is 16 when the model samples with ``grid_sample`` (DySample), because GridSample does not exist before.
    """
    from torch.onnx import _constants  # private, but the only place torch states its exporter's opset range

    highest = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", getattr(_constants, "ONNX_MAX_OPSET", 17))
    lowest = getattr(_constants, "ONNX_MIN_OPSET", 7)
    if any(isinstance(m, DySample) for m in model.modules()):
        lowest = max(lowest, GRID_SAMPLE_MIN_OPSET)
    return lowest, highest


def check_opset(opset, model):
    """Return the opset to use: upstream's default (latest supported minus one) or the user's, checked.

    Raises:
        ValueError: When the requested opset is below what the model needs or above what torch can write.
    """
    lowest, highest = onnx_opset_range(model)
    if opset is None:
        return max(lowest, highest - 1)
    if not isinstance(opset, int) or isinstance(opset, bool):
        raise ValueError(f"opset={opset!r} must be an integer ONNX opset version, e.g. opset={max(lowest, 17)}")
    if opset < lowest:
        why = "DySample's grid_sample needs the ONNX GridSample op" if lowest >= GRID_SAMPLE_MIN_OPSET else "torch"
        raise ValueError(f"opset={opset} is too old: {why} (opset >= {lowest}). Use opset={lowest} or newer")
    if opset > highest:
        raise ValueError(
            f"opset={opset} is newer than torch {torch.__version__}'s TorchScript-based ONNX exporter supports "
            f"(opset <= {highest}). Use opset={highest} or leave opset unset"
        )
    return opset


def check_export_imgsz(imgsz, stride):
    """Return ``[h, w]``, each rounded up to a multiple of ``stride`` (with a warning, as upstream's check_imgsz)."""
    sizes = list(imgsz) if isinstance(imgsz, (list, tuple)) else [imgsz]
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"imgsz={imgsz!r} must be a positive int or an [h, w] pair of them, e.g. imgsz=640")
    fixed = [max(-(-s // stride) * stride, stride) for s in sizes]
    if fixed != sizes:
        LOGGER.warning(f"imgsz={imgsz} must be multiple of max stride {stride}, updating to {fixed}")
    return fixed


def export_precision(quantize, fmt):
    """Read upstream 8.4's ``quantize`` (which replaced ``half``/``int8``): return True for fp16, False for fp32.

    Raises:
        ValueError: For int8 (TorchScript/ONNX exports here are float only) or a value that means nothing.
    """
    value = str(quantize).lower()
    if value in HALF_VALUES:
        return True
    if value in FULL_VALUES:
        return False
    if value in INT8_VALUES:
        raise ValueError(f"quantize={quantize} (int8) is not supported for format='{fmt}'; use quantize=16 (fp16)")
    raise ValueError(f"quantize={quantize!r} is not understood; use quantize=16 for fp16 or leave it unset for fp32")


def resolve_format(fmt):
    """Map the ``format`` argument to a supported format name, as upstream does (aliases, close misspellings).

    Raises:
        ValueError: Naming the format and the supported ones, for upstream formats this fork lacks and unknown ones.
    """
    import difflib

    supported = tuple(EXPORT_FORMATS)
    fmt = FORMAT_ALIASES.get(str(fmt).lower(), str(fmt).lower())
    if fmt in supported:
        return fmt
    if fmt in UPSTREAM_FORMATS:
        raise ValueError(f"Export format='{fmt}' is an upstream format this fork does not ship. Valid formats are "
                         f"{supported}")  # fmt: skip
    matches = difflib.get_close_matches(fmt, supported, n=1, cutoff=0.6)
    if matches:
        LOGGER.warning(f"Invalid export format='{fmt}', updating to format='{matches[0]}'")
        return matches[0]
    msg = "Model is already in PyTorch format." if fmt == "pt" else f"Invalid export format='{fmt}'."
    raise ValueError(f"{msg} Valid formats are {supported}")


def _check_mobile_optimizer(device):
    """``optimize=True`` runs torch's mobile optimizer, which exists only on CPU and in builds with XNNPACK."""
    import torch.backends.xnnpack  # not loaded by ``import torch``

    if device.type != "cpu":
        raise ValueError("optimize=True is not compatible with cuda devices, i.e. use device='cpu'")
    if not torch.backends.xnnpack.enabled:
        raise ValueError(f"optimize=True needs a torch build with XNNPACK; torch {torch.__version__} here has none")


def _logged(prefix, export):
    """Run one format's export and log upstream's success/failure line with its time and file size."""
    t = time.perf_counter()
    try:
        f = export()
    except Exception as e:
        LOGGER.error(f"{prefix} export failure ❌ {time.perf_counter() - t:.1f}s: {e}")
        raise
    LOGGER.info(f"{prefix} export success ✅ {time.perf_counter() - t:.1f}s, saved as '{f}' ({file_size(f):.1f} MB)")
    return f


@contextmanager
def _quiet_tracing():
    """Silence what tracing always says (TracerWarnings about shape→bool, torch's deprecation notices), scoped."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


class Exporter:
    """Export a detection model to ``torchscript`` or ``onnx``.

    Args:
        cfg (str | Path | dict): base configuration, default.yaml unless given.
        overrides (dict, optional): user arguments: ``format``, ``imgsz``, ``batch``, ``dynamic``, ``opset``,
            ``simplify``, ``optimize``, ``quantize`` (16 = fp16, CUDA only), ``nms`` (not supported), ``device``.
        _callbacks (dict, optional): accepted for upstream's signature; this fork runs no export callbacks.

    Example:
        >>> Exporter(overrides={"format": "onnx", "imgsz": 640, "batch": 1})(model)  # -> 'best.onnx'
    """

    def __init__(self, cfg=DEFAULT_CFG_PATH, overrides=None, _callbacks=None):
        self.args = get_cfg(cfg, overrides)
        self.model = self.im = self.file = self.metadata = self.device = self.imgsz = self.opset = None
        self.half = False

    def __call__(self, model=None):
        """Export ``model`` (nn.Module, ``.pt`` or ``.yaml``; default ``args.model``) and return the file's path."""
        t = time.time()
        fmt = resolve_format(self.args.format)
        model = self._as_module(model)
        self._check_args(fmt, model)
        self._setup(model, fmt)
        f = _logged(PREFIXES[fmt], self.export_torchscript if fmt == "torchscript" else self.export_onnx)
        self._log_done(str(f), time.time() - t)
        return str(f)

    # ------------------------------------------------------------------------------------------------- checks
    def _as_module(self, model):
        """Accept a model object (what ``YOLO.export`` passes), or a ``.pt``/``.yaml`` path for direct use."""
        if model is None:
            model = self.args.model
        if isinstance(model, (str, Path)):
            from ultralytics.nn.tasks import DetectionModel, attempt_load_one_weight

            yaml = Path(model).suffix in {".yaml", ".yml"}
            model = DetectionModel(str(model), verbose=False) if yaml else attempt_load_one_weight(model)[0]
        if not isinstance(model, nn.Module):
            raise TypeError(f"export needs a model (nn.Module, .pt or .yaml path), got {type(model).__name__}")
        return model

    def _check_args(self, fmt, model):
        """Refuse what these formats cannot do before any work is done; set device, precision and input size."""
        from ultralytics.utils.torch_utils import select_device

        if self.args.nms:
            raise ValueError(
                "nms=True export is not supported by this fork: export the raw (B, 4+nc, N) output and run NMS "
                "outside the model, as the predictor does"
            )
        if self.args.optimize and fmt != "torchscript":
            LOGGER.warning(f"optimize=True applies to format='torchscript' only; ignored for format='{fmt}'")
        batch = self.args.batch
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"batch={batch!r} must be a positive integer for export, e.g. batch=1")
        self.device = select_device("cpu" if self.args.device is None else self.args.device)
        self.half = export_precision(self.args.quantize, fmt)
        if self.half and self.device.type != "cuda":
            LOGGER.warning(f"quantize={self.args.quantize} (fp16) needs a CUDA device, i.e. device=0; exporting fp32")
            self.half = False
        if self.args.optimize and fmt == "torchscript":
            _check_mobile_optimizer(self.device)
        self.imgsz = check_export_imgsz(self.args.imgsz, int(max(getattr(model, "stride", torch.tensor([32])))))
        if fmt == "onnx":
            self.opset = check_opset(self.args.opset, model)

    # -------------------------------------------------------------------------------------------------- setup
    def _prepare(self, model, fmt):
        """Inference copy as upstream makes it: frozen, eval, fp32, fused, head in export mode (on the copy only)."""
        model = deepcopy(model).to(self.device)
        for p in model.parameters():
            p.requires_grad = False  # before fusing, so the fused weights are plain leaves
        model.eval().float()
        if hasattr(model, "fuse"):
            model = model.fuse(verbose=False)
        for m in model.modules():
            if isinstance(m, Detect):
                m.export, m.format, m.dynamic = True, fmt, bool(self.args.dynamic)  # instance attributes
        return model

    def _setup(self, model, fmt):
        """Build the input, the export model, the output file name and the metadata; dry-run the model."""
        ch = getattr(model, "yaml", {}).get("channels", 3)
        im = torch.zeros(self.args.batch, ch, *self.imgsz, device=self.device)
        file = Path(getattr(model, "pt_path", None) or getattr(model, "yaml", {}).get("yaml_file", "") or "model.pt")
        if file.suffix in {".yaml", ".yml"}:
            file = Path(file.name)  # built from a yaml: write to the working directory
        export_model = self._prepare(model, fmt)
        with torch.no_grad():
            for _ in range(2):  # dry runs: build caches and fail here, with a plain error, rather than in the tracer
                y = export_model(im)
        if self.half:
            im, export_model = im.half(), export_model.half()
        self.im, self.model, self.file = im, export_model, file
        self.metadata = self._metadata(model, fmt, ch)
        LOGGER.info(
            f"\n{colorstr('PyTorch:')} starting from '{file}' with input shape {tuple(im.shape)} BCHW and "
            f"output shape(s) {tuple(y.shape)} ({file_size(file):.1f} MB)"
        )

    def _metadata(self, model, fmt, ch):
        """The keys upstream writes (ONNX metadata_props / TorchScript config.txt) and ``AutoBackend`` reads."""
        train_args = model.args if isinstance(getattr(model, "args", None), dict) else {}
        data = train_args.get("data") or ""
        pretty = Path(getattr(model, "yaml", {}).get("yaml_file", "") or self.file).stem.replace("yolo", "YOLO")
        names = names_dict(getattr(model, "names", None))
        args = dict(self.args)
        args["quantize"] = 16 if self.half else None  # the precision and opset actually written
        args["opset"] = self.opset
        return {
            "description": f"Ultralytics {pretty} model {f'trained on {data}' if data else ''}",
            "author": "Ultralytics",
            "date": datetime.now().isoformat(),
            "version": __version__,
            "license": "AGPL-3.0 License (https://ultralytics.com/license)",
            "docs": "https://docs.ultralytics.com",
            "stride": int(max(model.stride)),
            "task": getattr(model, "task", None) or "detect",
            "batch": self.args.batch,
            "imgsz": self.imgsz,
            "names": names,
            "args": {k: v for k, v in args.items() if k in EXPORT_FORMATS[fmt][1]},
            "channels": ch,
        }

    # ------------------------------------------------------------------------------------------------ formats
    def export_torchscript(self):
        """Trace to TorchScript; metadata travels as the ``config.txt`` extra file (JSON), as upstream's."""
        prefix = PREFIXES["torchscript"]
        LOGGER.info(f"\n{prefix} starting export with torch {torch.__version__}...")
        f = self.file.with_suffix(".torchscript")
        extra_files = {"config.txt": json.dumps(self.metadata)}
        with _quiet_tracing():
            ts = torch.jit.trace(self.model, self.im, strict=False, check_trace=False)  # tests check numerics
            if self.args.optimize:
                from torch.utils.mobile_optimizer import optimize_for_mobile

                LOGGER.info(f"{prefix} optimizing for mobile...")
                optimize_for_mobile(ts)._save_for_lite_interpreter(str(f), _extra_files=extra_files)
            else:
                ts.save(str(f), _extra_files=extra_files)
        return f

    def export_onnx(self):
        """Export with torch's TorchScript-based exporter (``dynamo=False``) and embed the metadata."""
        import onnx

        prefix = PREFIXES["onnx"]
        LOGGER.info(f"\n{prefix} starting export with onnx {onnx.__version__} opset {self.opset}...")
        f = self.file.with_suffix(".onnx")
        dynamic = None
        if self.args.dynamic:
            dynamic = {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", 2: "anchors"}}
        kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        with _quiet_tracing():
            torch.onnx.export(
                self.model, self.im, str(f), opset_version=self.opset, do_constant_folding=True,
                input_names=["images"], output_names=["output0"], dynamic_axes=dynamic, **kwargs,
            )  # fmt: skip
        model_onnx = onnx.load(str(f))
        if self.args.simplify:
            model_onnx = self._simplify(model_onnx, prefix)
        for k, v in self.metadata.items():
            meta = model_onnx.metadata_props.add()
            meta.key, meta.value = k, str(v)  # str(dict) as upstream writes it; AutoBackend parses it back
        onnx.save(model_onnx, str(f))
        return f

    @staticmethod
    def _simplify(model_onnx, prefix):
        """Slim the graph with onnxslim when it is installed (upstream installs it; this fork never installs)."""
        try:
            import onnxslim
        except ImportError:
            LOGGER.info(f"{prefix} simplify skipped: onnxslim is not installed ('pip install onnxslim')")
            return model_onnx
        try:
            LOGGER.info(f"{prefix} slimming with onnxslim {onnxslim.__version__}...")
            return onnxslim.slim(model_onnx)
        except Exception as e:  # a failed simplification still leaves a valid, unsimplified export
            LOGGER.warning(f"{prefix} simplifier failure: {e}")
            return model_onnx

    def _log_done(self, f, dt):
        """Upstream's closing block: where the file went and the commands that use it."""
        h, w = self.imgsz
        imgsz = h if h == w else f"{h},{w}"
        square = "" if h == w else f"WARNING ⚠️ non-PyTorch val requires square images, use imgsz={max(h, w)}"
        q = "quantize=16" if self.half else ""
        data = self.model.args.get("data") if isinstance(getattr(self.model, "args", None), dict) else None
        LOGGER.info(
            f"\nExport complete ({dt:.1f}s)"
            f"\nResults saved to {colorstr('bold', self.file.parent.resolve())}"
            f"\nPredict:         yolo predict task=detect model={f} imgsz={imgsz} {q}"
            f"\nValidate:        yolo val task=detect model={f} imgsz={imgsz} data={data} {q} {square}"
            f"\nVisualize:       https://netron.app"
        )
