"""PyTorch helpers shared by the model, trainer and validator: fusion, initialisation, summaries, FLOPs."""

import copy
import math
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ultralytics.utils import LOGGER


@torch.no_grad()
def fuse_conv_and_bn(conv, bn):
    """Fold a BatchNorm2d that follows ``conv`` into a new Conv2d with bias (eval-mode equivalent)."""
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.groups, bias=True, device=conv.weight.device,
    ).requires_grad_(False)  # fmt: skip
    w_bn = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * w_bn.view(-1, 1, 1, 1))
    b_conv = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_(bn.bias + (b_conv - bn.running_mean) * w_bn)
    return fused


def initialize_weights(model):
    """Apply upstream's BatchNorm settings (eps 1e-3, momentum 0.03) and in-place activations."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
            m.momentum = 0.03
        elif isinstance(m, (nn.Hardswish, nn.LeakyReLU, nn.ReLU, nn.ReLU6, nn.SiLU)):
            m.inplace = True


def get_flops(model, imgsz=640):
    """Return GFLOPs of one forward at ``imgsz``, counted on the meta device (no real compute, no extra deps)."""
    from torch.utils.flop_counter import FlopCounterMode

    imgsz = imgsz if isinstance(imgsz, (list, tuple)) else (imgsz, imgsz)
    try:
        meta = copy.deepcopy(model).to("meta").train()  # train mode: the head skips box decoding, as thop does
        ch = getattr(model, "yaml", {}).get("channels", 3)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            meta(torch.empty(1, ch, *imgsz, device="meta"))
        return counter.get_total_flops() / 1e9
    except Exception as e:  # a model the counter cannot trace still gets a summary, just without FLOPs
        LOGGER.debug(f"FLOPs not counted: {e}")
        return 0.0


def model_info(model, detailed=False, verbose=True, imgsz=640):
    """Log upstream's summary line and return (layers, parameters, gradients, GFLOPs)."""
    n_p = sum(p.numel() for p in model.parameters())
    n_g = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_l = sum(1 for m in model.modules() if not any(m.children()))  # leaf modules, as upstream counts layers
    if detailed:
        LOGGER.info(f"{'layer':>5}{'name':>40}{'gradient':>10}{'parameters':>12}{'shape':>20}{'mu':>10}{'sigma':>10}")
        for i, (name, p) in enumerate(model.named_parameters()):
            sigma = p.std().item() if p.numel() > 1 else 0.0
            LOGGER.info(
                f"{i:5d}{name:>40}{p.requires_grad!s:>10}{p.numel():12d}{list(p.shape)!s:>20}"
                f"{p.mean().item():10.3g}{sigma:10.3g}"
            )
    flops = get_flops(model, imgsz)
    fused = " (fused)" if getattr(model, "is_fused", lambda: False)() else ""
    flops_str = f", {flops:.1f} GFLOPs" if flops else ""
    yaml_file = getattr(model, "yaml_file", "") or getattr(model, "yaml", {}).get("yaml_file", "")
    name = Path(yaml_file).stem.replace("yolo", "YOLO") or "Model"
    if verbose:
        LOGGER.info(f"{name} summary{fused}: {n_l:,} layers, {n_p:,} parameters, {n_g:,} gradients{flops_str}")
    return n_l, n_p, n_g, flops


def intersect_dicts(da, db, exclude=()):
    """Entries of ``da`` whose key is in ``db`` with the same shape, minus keys containing an ``exclude`` word."""
    return {k: v for k, v in da.items() if k in db and all(x not in k for x in exclude) and v.shape == db[k].shape}


def de_parallel(model):
    """Return the bare model inside a DataParallel/DistributedDataParallel wrapper."""
    return model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model


def select_device(device="", batch=0, verbose=True):
    """Turn a device string into a ``torch.device``, with a clear error when the asked-for device is missing.

    Args:
        device (str | int | torch.device): '' (first CUDA GPU, else CPU), 'cpu', 'mps', '0', 'cuda:1' or '0,1'.
        batch (int): batch size; with several GPUs it must divide evenly between them.

    Returns:
        (torch.device): the device this process uses (the first listed GPU for a multi-GPU string).
    """
    if isinstance(device, torch.device):
        return device
    spec = str(device).strip().lower().replace("cuda:", "").replace("none", "").replace(" ", "")
    if spec in {"cpu", "mps"}:
        if spec == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError("device=mps requested but MPS is not available on this machine")
        return torch.device(spec)
    if spec == "":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    ids = [s for s in spec.split(",") if s]
    if not all(s.isdigit() for s in ids):
        raise ValueError(f"invalid device '{device}': use '', 'cpu', 'mps', a GPU index such as '0', or '0,1'")
    available = torch.cuda.device_count()
    missing = [s for s in ids if int(s) >= available]
    if missing:
        raise ValueError(f"device '{device}' requested but this machine has {available} CUDA device(s)")
    if len(ids) > 1 and batch > 0 and batch % len(ids):
        raise ValueError(f"batch={batch} must be a multiple of the number of GPUs ({len(ids)})")
    local = int(os.getenv("LOCAL_RANK", -1))
    return torch.device(f"cuda:{ids[local] if 0 <= local < len(ids) else ids[0]}")


def init_seeds(seed=0, deterministic=False):
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels (warn-only where none exist)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def rng_state():
    """Snapshot every random generator a training epoch draws from, as plain checkpoint data."""
    np_state = np.random.get_state()
    return {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state):
    """Restore a snapshot from ``rng_state`` so a resumed run draws the same numbers."""
    random.setstate((3, tuple(int(x) for x in state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), int(state["numpy_pos"]), 0, 0.0))
    torch.set_rng_state(state["torch"])


class ModelEMA:
    """Exponential moving average of a model's weights, with upstream's warm-up of the decay.

    ``decay · (1 − exp(−updates / tau))`` keeps the average close to the live weights early in training.
    """

    def __init__(self, model, decay=0.9999, tau=2000, updates=0):
        self.ema = copy.deepcopy(de_parallel(model)).eval()
        self.updates = updates
        self.decay = lambda x: decay * (1 - math.exp(-x / tau))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        """Blend the live weights into the average (floating-point entries only)."""
        self.updates += 1
        d = self.decay(self.updates)
        live = de_parallel(model).state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(live[k].detach(), alpha=1 - d)

    def update_attr(self, model, include=()):
        """Copy plain attributes (e.g. ``names``, ``args``) from the live model."""
        for k in include:
            setattr(self.ema, k, getattr(de_parallel(model), k))


class EarlyStopping:
    """Stop training when fitness has not improved for ``patience`` epochs."""

    def __init__(self, patience=50):
        self.best_fitness = 0.0
        self.best_epoch = 0
        self.patience = patience or float("inf")
        self.possible_stop = False

    def __call__(self, epoch, fitness):
        """Record this epoch's fitness and return True when training should stop."""
        if fitness is None:
            return False
        if fitness >= self.best_fitness:
            self.best_epoch, self.best_fitness = epoch, fitness
        delta = epoch - self.best_epoch
        self.possible_stop = delta >= self.patience - 1
        stop = delta >= self.patience
        if stop:
            LOGGER.info(
                f"Stopping training early as no improvement observed in last {self.patience} epochs. "
                f"Best results observed at epoch {self.best_epoch}, best model saved as best.pt."
            )
        return stop


def one_cycle(y1=0.0, y2=1.0, steps=100):
    """Cosine ramp from y1 to y2 over ``steps``, for ``cos_lr=True``."""
    return lambda x: max((1 - math.cos(x * math.pi / steps)) / 2, 0) * (y2 - y1) + y1
