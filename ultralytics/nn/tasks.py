"""Models built from yaml: the layer runner, the detection model and the yaml parser.

``parse_model`` follows upstream Ultralytics rule for rule (depth/width/max-channel scaling, channel rounding to
multiples of 8, repeats folded into the CSP blocks), so the same yaml yields the same layers and state-dict keys.
This fork's additions are the DySample and CARAFE lines, marked ``# DySample`` / ``# CARAFE`` below; keep them
that small for rebasing.
"""

import ast
import contextlib
import re
from copy import deepcopy
from pathlib import Path

import torch
from torch import nn

from ultralytics.nn.modules import (
    C2PSA,
    C3,
    DFL,
    SPPF,
    Attention,
    Bottleneck,
    C2f,
    C3k,
    C3k2,
    Concat,
    Conv,
    Detect,
    DWConv,
    PSABlock,
)  # fmt: skip
from ultralytics.nn.modules.Addmodules import CARAFE, Dy_Sample, DySample  # DySample, CARAFE
from ultralytics.utils import CFG_DIR, LOGGER, colorstr, yaml_load
from ultralytics.utils.checkpoint import load_checkpoint
from ultralytics.utils.ops import make_divisible
from ultralytics.utils.torch_utils import fuse_conv_and_bn, initialize_weights, intersect_dicts, model_info

MODULES = {
    m.__name__: m
    for m in (Conv, DWConv, Concat, DFL, Bottleneck, C2f, C3, C3k, C3k2, SPPF, Attention, PSABlock, C2PSA, Detect)
}
MODULES.update(DySample=DySample, Dy_Sample=Dy_Sample)  # DySample
MODULES.update(CARAFE=CARAFE)  # CARAFE

BASE_MODULES = frozenset({Conv, DWConv, Bottleneck, C2f, C3, C3k, C3k2, SPPF, C2PSA})  # (c1, c2, ...) signature
REPEAT_MODULES = frozenset({C2f, C3, C3k, C3k2, C2PSA})  # take the repeat count as their third argument
HEAD_MODULES = frozenset({Detect})


class BaseModel(nn.Module):
    """Runs a yaml-defined layer list, keeping only the outputs later layers read (the ``save`` list)."""

    def forward(self, x, *args, **kwargs):
        """Return predictions for an image tensor, or the loss for a training batch dict."""
        if isinstance(x, dict):
            return self.loss(x, *args, **kwargs)
        return self.predict(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """Run every layer in order, feeding each the outputs its ``from`` field names."""
        saved = []
        for m in self.model:
            if m.f != -1:
                x = saved[m.f] if isinstance(m.f, int) else [x if j == -1 else saved[j] for j in m.f]
            x = m(x)
            saved.append(x if m.i in self.save else None)
        return x

    def is_fused(self, thresh=10):
        """True when (almost) no BatchNorm layers are left, i.e. after ``fuse()``."""
        bn_types = tuple(v for k, v in nn.__dict__.items() if "Norm" in k)
        return sum(isinstance(m, bn_types) for m in self.modules()) < thresh

    def fuse(self, verbose=True):
        """Fold every Conv's BatchNorm into its convolution for faster inference; outputs do not change."""
        if not self.is_fused():
            for m in self.model.modules():
                if isinstance(m, Conv) and hasattr(m, "bn"):
                    m.conv = fuse_conv_and_bn(m.conv, m.bn)
                    delattr(m, "bn")
                    m.forward = m.forward_fuse
            if verbose:
                self.info()
        return self

    def info(self, detailed=False, verbose=True, imgsz=640):
        """Log the summary line "NAME summary: L layers, P parameters, G gradients, F GFLOPs"."""
        return model_info(self, detailed=detailed, verbose=verbose, imgsz=imgsz)

    def _apply(self, fn, *args, **kwargs):
        """Move the head's stride and cached anchors along with the parameters (they are plain tensors)."""
        self = super()._apply(fn, *args, **kwargs)
        head = self.model[-1]
        if isinstance(head, Detect):
            head.stride = fn(head.stride)
            head.anchors = fn(head.anchors)
            head.strides = fn(head.strides)
            head.shape = None
        return self

    def load(self, weights, verbose=True):
        """Copy every tensor whose name and shape match from a checkpoint file, model or state dict; log the count."""
        if isinstance(weights, (str, Path)):
            weights = checkpoint_state(weights)
        state = weights.float().state_dict() if isinstance(weights, nn.Module) else weights
        own = self.state_dict()
        matched = intersect_dicts(state, own)
        self.load_state_dict(matched, strict=False)
        if verbose:
            LOGGER.info(f"Transferred {len(matched)}/{len(own)} items from pretrained weights")
        return matched

    def loss(self, batch, preds=None):
        """Detection loss for a batch dict; the criterion is built on first use."""
        if getattr(self, "criterion", None) is None:
            self.criterion = self.init_criterion()
        if preds is None:
            preds = self.forward(batch["img"])
        return self.criterion(preds, batch)

    def init_criterion(self):
        raise NotImplementedError("init_criterion() is defined by task models")


class DetectionModel(BaseModel):
    """YOLO detection model built from a yaml file or dict.

    Args:
        cfg (str | Path | dict): model yaml (``yolo11n-dysample.yaml`` picks scale n of ``yolo11-dysample.yaml``).
        ch (int): input channels.
        nc (int, optional): number of classes, overriding the yaml's.
        verbose (bool): print the layer table and summary.
    """

    def __init__(self, cfg="yolo11n.yaml", ch=3, nc=None, verbose=True):
        super().__init__()
        self.yaml = cfg if isinstance(cfg, dict) else yaml_model_load(cfg)
        ch = self.yaml["channels"] = self.yaml.get("channels", ch)
        if nc and nc != self.yaml.get("nc"):
            LOGGER.info(f"Overriding model.yaml nc={self.yaml.get('nc')} with nc={nc}")
            self.yaml["nc"] = nc
        self.model, self.save = parse_model(deepcopy(self.yaml), ch=ch, verbose=verbose)
        self.names = {i: f"{i}" for i in range(self.yaml["nc"])}
        self.inplace = self.yaml.get("inplace", True)
        head = self.model[-1]
        if isinstance(head, Detect):
            head.stride = self._probe_strides(head, ch)
            self.stride = head.stride
            head.bias_init()
        else:
            self.stride = torch.tensor([32.0])
        initialize_weights(self)
        if verbose:
            self.info()
            LOGGER.info("")

    @property
    def yaml_file(self):
        return self.yaml.get("yaml_file", "")

    def _probe_strides(self, head, ch, s=256):
        """Find each level's stride from a dummy forward, without touching BatchNorm statistics."""
        was_training = self.training
        self.eval()
        head.training = True  # the head returns its raw per-level maps
        with torch.no_grad():
            maps = self.predict(torch.zeros(1, ch, s, s))
        self.train(was_training)
        return torch.tensor([s / x.shape[-2] for x in maps])

    def init_criterion(self):
        from ultralytics.utils.loss import v8DetectionLoss

        return v8DetectionLoss(self)


def _resolve_module(name, index):
    """Map a yaml module name to a class: ``nn.Upsample`` style names or this package's registry."""
    if name.startswith("nn."):
        module = getattr(nn, name[3:], None)
    else:
        module = MODULES.get(name)
    if module is None:
        known = ", ".join(sorted(MODULES))
        raise ValueError(f"model yaml layer {index}: unknown module '{name}'. Known modules: {known}, or nn.<Name>")
    return module


def _resolve_args(args, names):
    """Turn yaml string arguments into values: names such as ``nc``, Python literals, else keep the string."""
    resolved = []
    for a in args:
        if isinstance(a, str):
            if a in names:
                a = names[a]
            else:
                with contextlib.suppress(ValueError, SyntaxError):
                    a = ast.literal_eval(a)
        resolved.append(a)
    return resolved


def _activation(spec):
    """Build the activation a yaml's ``activation:`` names, e.g. ``nn.ReLU()`` or ``nn.LeakyReLU(0.1)``."""
    match = re.fullmatch(r"\s*nn\.(\w+)\((.*)\)\s*", str(spec))
    if not match or not hasattr(nn, match.group(1)):
        raise ValueError(f"model yaml activation '{spec}' is not of the form nn.Name(args)")
    args = ast.literal_eval(f"({match.group(2)},)") if match.group(2).strip() else ()
    return getattr(nn, match.group(1))(*args)


def _scaling(d):
    """Return (depth, width, max_channels, scale) for the yaml, picking the first scale when none is set."""
    scales = d.get("scales")
    if not scales:
        return d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0), float("inf"), d.get("scale", "")
    scale = d.get("scale")
    if not scale:
        scale = next(iter(scales))
        LOGGER.warning(f"no model scale passed. Assuming scale='{scale}'.")
    if scale not in scales:
        raise ValueError(f"model scale '{scale}' is not in the yaml's scales {list(scales)}")
    depth, width, max_channels = scales[scale]
    return depth, width, max_channels, scale


def parse_model(d, ch, verbose=True):
    """Build the layer list from a model dict.

    Args:
        d (dict): model yaml contents (``nc``, ``scales`` or multipliers, ``backbone``, ``head``).
        ch (int): input channels.
        verbose (bool): print the layer table.

    Returns:
        (nn.Sequential, list[int]): the layers, and the indices whose outputs later layers read.
    """
    nc = d.get("nc")
    depth, width, max_channels, scale = _scaling(d)
    if d.get("activation"):
        Conv.default_act = _activation(d["activation"])
        if verbose:
            LOGGER.info(f"{colorstr('activation:')} {d['activation']}")
    if verbose:
        LOGGER.info(f"\n{'':>3}{'from':>20}{'n':>3}{'params':>10}  {'module':<45}{'arguments':<30}")
    chs = [ch]
    layers, save = [], []
    for i, (f, n, name, args) in enumerate(d["backbone"] + d["head"]):
        m = _resolve_module(name, i)
        args = _resolve_args(args, {"nc": nc})
        n = n_ = max(round(n * depth), 1) if n > 1 else n
        c2 = chs[f] if isinstance(f, int) else chs[f[0]]
        if m in BASE_MODULES:
            c1, c2 = chs[f], args[0]
            if c2 != nc:
                c2 = make_divisible(min(c2, max_channels) * width, 8)
            args = [c1, c2, *args[1:]]
            if m in REPEAT_MODULES:
                args.insert(2, n)
                n = 1
            if m is C3k2 and scale in "mlx" and scale:  # upstream forces C3k blocks at scales m, l, x
                args[3] = True
        elif m is nn.BatchNorm2d:
            args = [chs[f]]
        elif m is Concat:
            c2 = sum(chs[x] for x in f)
        elif m in HEAD_MODULES:
            args = [*args[:1], d.get("reg_max", 16), bool(d.get("end2end", False)), [chs[x] for x in f]]
        elif m in {DySample, CARAFE}:  # DySample, CARAFE: input channels from ch[f], prepended; output = input
            c2 = chs[f]
            args = [c2, *args]
        layer = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
        kind = f"{m.__module__}.{m.__qualname__}"
        layer.np = sum(x.numel() for x in layer.parameters())
        layer.i, layer.f, layer.type = i, f, kind
        if verbose:
            LOGGER.info(f"{i:>3}{str(f):>20}{n_:>3}{layer.np:10.0f}  {kind:<45}{str(args):<30}")
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
        layers.append(layer)
        if i == 0:
            chs = []
        chs.append(c2)
    return nn.Sequential(*layers), sorted(save)


def guess_model_scale(model_path):
    """Return the scale letter in a name like ``yolo11n-dysample.yaml`` (``n``), or '' when there is none."""
    match = re.search(r"yolo(e-)?v?\d+([nslmx])", Path(model_path).stem)
    return match.group(2) if match else ""


def _find_yaml(name):
    """Locate a model yaml: as given, else by file name under this package's ``cfg/models``."""
    path = Path(name)
    if path.is_file():
        return path
    hits = sorted((CFG_DIR / "models").rglob(path.name))
    return hits[0] if hits else None


def yaml_model_load(path):
    """Load a model yaml, mapping a scaled name (``yolo11n-dysample.yaml``) to its family file plus ``scale``."""
    path = Path(path)
    unified = path.with_name(re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", path.stem) + path.suffix)
    found = _find_yaml(unified) or _find_yaml(path)
    if found is None:
        available = sorted(p.name for p in (CFG_DIR / "models").rglob("*.yaml"))
        raise FileNotFoundError(f"model yaml '{path}' not found. Built-in model yamls: {', '.join(available)}")
    d = yaml_load(found)
    for key in ("backbone", "head"):
        if not isinstance(d.get(key), list):
            raise ValueError(f"model yaml '{found}' has no '{key}' list")
    d["scale"] = guess_model_scale(path)
    d["yaml_file"] = str(path)
    return d


def checkpoint_state(weight, ckpt=None):
    """The weights a checkpoint is run with: its EMA when it has one (as upstream does), else its model."""
    ckpt = ckpt if ckpt is not None else load_checkpoint(weight)
    state = ckpt["ema_state"] or ckpt["model_state"]
    if state is None:
        raise ValueError(f"checkpoint '{weight}' holds no weights")
    return state


def attempt_load_one_weight(weight, device=None, fuse=False, verbose=False):
    """Build a model from a checkpoint of this fork or of upstream (loaded safely) and return (model, ckpt).

    The architecture comes from the yaml stored in the checkpoint, the weights from its EMA (else its model),
    so upstream checkpoints and tutorial-fork checkpoints (``Dy_Sample``) become this fork's modules.
    """
    ckpt = load_checkpoint(weight)
    if not ckpt.get("yaml"):
        raise ValueError(f"checkpoint '{weight}' holds no model yaml, so its architecture is unknown")
    state = checkpoint_state(weight, ckpt)
    model = DetectionModel(deepcopy(ckpt["yaml"]), nc=ckpt.get("nc"), verbose=verbose)
    missing = set(model.state_dict()) ^ set(state)
    if missing:
        raise ValueError(f"checkpoint '{weight}' does not fit its own yaml; mismatched keys: {sorted(missing)[:5]}")
    model.load_state_dict(state)
    model.names = ckpt["names"] or model.names
    model.args = dict(ckpt["train_args"])
    model.pt_path = str(weight)
    if device is not None:
        model = model.to(device)
    if fuse:
        model.fuse(verbose=False)
    return model.eval(), ckpt
