"""Layer modules that yaml model files name by class."""

from .block import C2PSA, C3, DFL, SPPF, Attention, Bottleneck, C2f, C3k, C3k2, PSABlock
from .conv import Concat, Conv, DWConv, autopad
from .head import Detect

__all__ = (
    "autopad", "Conv", "DWConv", "Concat", "DFL", "Bottleneck", "C2f", "C3", "C3k", "C3k2", "SPPF", "Attention",
    "PSABlock", "C2PSA", "Detect",
)  # fmt: skip
