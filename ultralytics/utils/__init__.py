"""Ground-floor helpers shared by every other package: logging, paths and YAML I/O.

Nothing here imports from ``nn``, ``data``, ``engine`` or ``models``; those floors build on this one.
"""

import logging
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]  # the ``ultralytics`` package folder
CFG_DIR = ROOT / "cfg"
DEFAULT_CFG_PATH = CFG_DIR / "default.yaml"
RANK = int(os.getenv("RANK", -1))
LOCAL_RANK = int(os.getenv("LOCAL_RANK", -1))
NUM_THREADS = min(8, max(1, os.cpu_count() or 1))


def _make_logger(name="ultralytics"):
    """Return a logger that prints bare messages to stdout, like upstream's, and only on rank 0."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if RANK in {-1, 0} else logging.WARNING)
    return logger


LOGGER = _make_logger()

_COLORS = {
    "black": "\033[30m", "red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m", "blue": "\033[34m",
    "magenta": "\033[35m", "cyan": "\033[36m", "white": "\033[37m", "bold": "\033[1m", "underline": "\033[4m",
    "end": "\033[0m",
}  # fmt: skip


def colorstr(*parts):
    """Wrap the last argument in ANSI codes named by the others (default bold blue), as upstream's logs do."""
    *styles, text = parts if len(parts) > 1 else ("blue", "bold", parts[0])
    return "".join(_COLORS[s] for s in styles) + f"{text}" + _COLORS["end"]


def yaml_load(file):
    """Load a YAML file into a dict, naming the file in the error when it is missing or malformed."""
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"YAML file '{file}' does not exist")
    try:
        with open(file, encoding="utf-8", errors="ignore") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"YAML file '{file}' is malformed: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"YAML file '{file}' must hold a mapping at the top level, got {type(data).__name__}")
    return data


def yaml_save(file, data):
    """Write ``data`` to ``file`` as YAML, turning Paths into strings so the file stays portable."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
    with open(file, "w", encoding="utf-8") as f:
        yaml.safe_dump(clean, f, sort_keys=False, allow_unicode=True)
