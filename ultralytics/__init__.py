"""Ultralytics-compatible YOLO11 with the DySample dynamic upsampler.

The top-level names are resolved lazily so that ``import ultralytics`` stays cheap and free of side effects.
"""

__version__ = "8.4.190.post1"

__all__ = ["YOLO", "__version__"]


def __getattr__(name):
    """Import the public API on first use instead of at package import time."""
    if name == "YOLO":
        from ultralytics.models.yolo.model import YOLO

        return YOLO
    raise AttributeError(f"module 'ultralytics' has no attribute {name!r}")
