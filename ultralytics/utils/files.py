"""File-system helpers shared by the trainer and the validator (ground floor: standard library only)."""

import os
from pathlib import Path


def increment_path(path, exist_ok=False, sep="", mkdir=False):
    """Return ``path``, or the first free ``path{sep}2``, ``path{sep}3``... so runs never overwrite each other.

    Upstream names successive runs ``runs/detect/train``, ``train2``, ``train3``; scripts and docs rely on that, so the
    numbering starts at 2 and a file keeps its suffix after the number (``results2.csv``).

    Args:
        path (str | Path): The preferred path (a run folder, or a file).
        exist_ok (bool): Reuse ``path`` as it is even when it already exists.
        sep (str): Text between the name and the number (``exp`` + ``_`` + ``2``).
        mkdir (bool): Create the returned folder (and its parents).

    Returns:
        (Path): The path to use.
    """
    path = Path(path)
    if path.exists() and not exist_ok:
        stem, suffix = (path.with_suffix(""), path.suffix) if path.is_file() else (path, "")
        n = 2
        while os.path.exists(f"{stem}{sep}{n}{suffix}"):
            n += 1
        path = Path(f"{stem}{sep}{n}{suffix}")
    if mkdir:
        path.mkdir(parents=True, exist_ok=True)
    return path
