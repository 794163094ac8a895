"""Modules added to upstream Ultralytics by this fork. Keep the delta here so it rebases onto new releases."""

from .DySample import DySample, Dy_Sample

__all__ = ("DySample", "Dy_Sample")
