"""Run a detection model from any file this fork writes: a ``.pt`` checkpoint, an ``.onnx`` or a ``.torchscript``.

The predictor and validator talk to one object whatever the format: ``AutoBackend(weights)(im)`` returns the Detect
output (B, 4 + nc, N): xywh boxes in input pixels, then class scores. Names, stride and export size come from the
checkpoint or from the metadata the exporter embedded, so exported files need no side-car yaml.

This module sits on the ``nn`` floor: it imports ``utils`` (and ``nn.tasks`` for checkpoints) only.
"""

import ast
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ultralytics.utils import LOGGER
from ultralytics.utils.checkpoint import names_dict

__all__ = ("AutoBackend",)

ONNX_FLOAT16 = "tensor(float16)"


def parse_metadata(meta):
    """Turn exporter metadata (ONNX props are all strings, ``str(value)``) back into Python values."""
    out = dict(meta)
    for k in ("stride", "batch", "channels"):
        if k in out:
            out[k] = int(out[k])
    for k in ("imgsz", "names", "args"):
        if isinstance(out.get(k), str):
            out[k] = ast.literal_eval(out[k])  # literals only: written by str(dict/list), never code
    if "names" in out:
        out["names"] = names_dict(out["names"])
    return out


def _default_names(nc):
    """Names ``{0: 'class0', ...}`` for a model that carries none, as upstream's fallback."""
    return {i: f"class{i}" for i in range(nc)}


class AutoBackend(nn.Module):
    """One inference interface over PyTorch, TorchScript and ONNX Runtime.

    Args:
        weights (str | Path | nn.Module): ``.pt`` checkpoint, ``.onnx`` or ``.torchscript`` file, or a model object
            (moved to ``device``, put in eval mode and, with ``fuse``, fused in place: pass a copy to keep yours).
        device (str | torch.device): where inputs and outputs live (ONNX runs on the CPU provider, or CUDA's when
            ``device`` is CUDA and onnxruntime has it).
        fp16 (bool): run a ``.pt``/model in half precision (CUDA only). Exported files keep the precision they were
            exported with; ``fp16`` then reports it.
        fuse (bool): fold BatchNorm into convolutions of ``.pt`` weights or a model object.
        verbose (bool): log what was loaded.
        **kwargs: upstream's other arguments (``dnn``, ``data``, ``batch``) are accepted and unused.

    Attributes:
        names (dict[int, str]), stride (int), imgsz (list[int] | None: export size), batch (int | None: fixed export
        batch), dynamic (bool: the file accepts other sizes/batches), fp16 (bool: feed ``im.half()``), format (str:
        ``pt``, ``onnx`` or ``torchscript``), pt / jit / onnx (bools, as upstream), metadata (dict).
    """

    def __init__(self, weights="yolo11n.pt", device="cpu", fp16=False, fuse=True, verbose=True, **kwargs):
        super().__init__()
        self.device = torch.device(device)
        fp16 = bool(fp16) and self.device.type == "cuda"
        self.metadata, self.imgsz, self.batch, self.dynamic = {}, None, None, True
        self.model = self.session = None
        if isinstance(weights, nn.Module):
            self.format = "pt"
            self._init_module(weights, fp16, fuse)
        else:
            w = Path(weights)
            if not w.is_file():
                raise FileNotFoundError(f"model file '{w}' not found")
            self.format = {".pt": "pt", ".onnx": "onnx", ".torchscript": "torchscript"}.get(w.suffix.lower())
            if self.format is None:
                raise ValueError(f"model='{w}' is not a format this fork runs; use a .pt, .onnx or .torchscript file")
            if verbose:
                LOGGER.info(f"Loading {w} for {self.format} inference...")
            getattr(self, f"_load_{self.format}")(w, fp16, fuse)
        self.pt, self.jit, self.onnx = (self.format == f for f in ("pt", "torchscript", "onnx"))
        self.task = self.metadata.get("task", "detect")
        self.ch = self.metadata.get("channels", 3)

    # ---------------------------------------------------------------------------------------------- loading
    def _init_module(self, model, fp16, fuse):
        """Use an in-memory model: eval, on ``device``, optionally fused and halved."""
        model = model.to(self.device).eval()
        if fuse and hasattr(model, "fuse"):
            with torch.no_grad():  # fused weights made under no_grad stay plain leaves
                model = model.fuse(verbose=False)
        self.model = model.half() if fp16 else model.float()
        self.fp16 = fp16
        self.stride = max(int(model.stride.max()), 32) if hasattr(model, "stride") else 32
        names = getattr(model, "names", None)
        self.names = names_dict(names) if names else _default_names(getattr(model, "nc", None) or 999)

    def _load_pt(self, w, fp16, fuse):
        """Build the model from a checkpoint of this fork or upstream (loaded safely)."""
        from ultralytics.nn.tasks import attempt_load_one_weight

        model, _ = attempt_load_one_weight(w, device=self.device)
        for p in model.parameters():
            p.requires_grad = False
        self._init_module(model, fp16, fuse)

    def _load_torchscript(self, w, fp16, fuse):
        """Load a traced model; its metadata is the JSON ``config.txt`` extra file the exporter wrote."""
        extra = {"config.txt": ""}
        with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; it is the format being loaded
            warnings.filterwarnings("ignore", category=FutureWarning)
            self.model = torch.jit.load(str(w), map_location=self.device, _extra_files=extra).eval()
        if extra["config.txt"]:
            self._apply_metadata(json.loads(extra["config.txt"]))
        self.dynamic = bool(self.metadata.get("args", {}).get("dynamic", False))
        first = next(iter(self.model.parameters()), None)
        self.fp16 = first is not None and first.dtype == torch.float16

    def _load_onnx(self, w, fp16, fuse):
        """Open an ONNX Runtime session; sizes given as names (not numbers) in the input mean a dynamic export."""
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif self.device.type == "cuda":
            LOGGER.warning("onnxruntime has no CUDA provider here; running ONNX on the CPU")
        self.session = onnxruntime.InferenceSession(str(w), providers=providers)
        self._apply_metadata(self.session.get_modelmeta().custom_metadata_map)
        inp = self.session.get_inputs()[0]
        self.input_name, self.input_shape = inp.name, list(inp.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.dynamic = any(not isinstance(d, int) for d in self.input_shape)
        self.fp16 = inp.type == ONNX_FLOAT16

    def _apply_metadata(self, meta):
        """Read names, stride, export size and batch from exporter metadata (missing keys keep the defaults)."""
        self.metadata = parse_metadata(meta) if meta else {}
        self.stride = self.metadata.get("stride", 32)
        self.imgsz = self.metadata.get("imgsz")
        self.batch = self.metadata.get("batch")
        if "names" not in self.metadata:
            LOGGER.warning("model metadata has no class names; using class0, class1, ...")
        self.names = self.metadata.get("names") or _default_names(999)

    # -------------------------------------------------------------------------------------------- inference
    def forward(self, im, **kwargs):
        """Return the (B, 4 + nc, N) prediction tensor for a (B, C, H, W) batch, on this backend's device."""
        if self.fp16 and im.dtype != torch.float16:
            im = im.half()
        if not self.dynamic:
            self._check_fixed_shape(im)
        if self.format == "onnx":
            y = self.session.run(self.output_names, {self.input_name: im.detach().cpu().numpy()})[0]
            return torch.from_numpy(np.ascontiguousarray(y)).to(self.device)
        y = self.model(im)
        return y[0] if isinstance(y, (list, tuple)) else y

    def _check_fixed_shape(self, im):
        """Name the expected input when a fixed-size export gets another size (instead of a runtime's stack trace)."""
        if self.imgsz is None:
            return
        expected = (self.batch or im.shape[0], self.ch, *self.imgsz)
        if tuple(im.shape) != expected:
            raise ValueError(
                f"this {self.format} model was exported with a fixed input {expected} (B, C, H, W) but got "
                f"{tuple(im.shape)}; letterbox to imgsz={list(self.imgsz)} with batch={expected[0]}, or re-export "
                f"with dynamic=True"
            )

    def warmup(self, imgsz=(1, 3, 640, 640)):
        """Run one dummy batch so the first real image does not pay for lazy initialisation (skipped on CPU)."""
        if self.device.type != "cpu":
            self.forward(torch.zeros(*imgsz, dtype=torch.half if self.fp16 else torch.float, device=self.device))

    def __repr__(self):
        return f"AutoBackend(format={self.format!r}, device={self.device}, dynamic={self.dynamic}, fp16={self.fp16})"
