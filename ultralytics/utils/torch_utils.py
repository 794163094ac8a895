"""PyTorch helpers shared by the model, trainer and validator: fusion, initialisation, summaries, FLOPs."""

import copy
from pathlib import Path

import torch
from torch import nn

from ultralytics.utils import LOGGER


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
