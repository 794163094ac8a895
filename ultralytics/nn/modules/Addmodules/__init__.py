"""Modules added to upstream Ultralytics by this fork. Keep the delta here so it rebases onto new releases."""

from .CARAFE import CARAFE
from .DySample import Dy_Sample, DySample

__all__ = ("CARAFE", "DySample", "Dy_Sample")
