"""Convolution building blocks with upstream Ultralytics' names, signatures and attribute names.

Attribute names (``conv``, ``bn``, ``act``) are part of the state-dict contract with upstream checkpoints.
"""

import math

import torch
from torch import nn

__all__ = ("autopad", "Conv", "DWConv", "Concat")


def autopad(k, p=None, d=1):
    """Return the padding that keeps a stride-1 convolution's output the same size as its input."""
    if d > 1:
        k = d * (k - 1) + 1 if isinstance(k, int) else [d * (x - 1) + 1 for x in k]
    if p is None:
        p = k // 2 if isinstance(k, int) else [x // 2 for x in k]
    return p


class Conv(nn.Module):
    """Conv2d → BatchNorm2d → activation, the unit every YOLO layer is made of.

    Args:
        c1 (int): input channels.
        c2 (int): output channels.
        k (int): kernel size.
        s (int): stride.
        p (int, optional): padding; ``None`` keeps the spatial size at stride 1.
        g (int): groups.
        d (int): dilation.
        act (bool | nn.Module): ``True`` for the default SiLU, a module to use it, anything else for identity.
    """

    default_act = nn.SiLU()  # parse_model may replace it when a yaml sets ``activation:``

    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, d=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))

    def forward_fuse(self, x):
        """Forward used after ``fuse()`` has folded the BatchNorm into ``conv``."""
        return self.act(self.conv(x))


class DWConv(Conv):
    """Depth-wise convolution: groups = gcd(c1, c2), so it is fully depth-wise when c1 == c2."""

    def __init__(self, c1, c2, k=1, s=1, d=1, act=True):
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), d=d, act=act)


class Concat(nn.Module):
    """Concatenate a list of tensors along ``dimension`` (the channel axis by default)."""

    def __init__(self, dimension=1):
        super().__init__()
        self.d = dimension

    def forward(self, x):
        return torch.cat(x, self.d)
