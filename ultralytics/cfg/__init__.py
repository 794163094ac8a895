"""Configuration support: the default arguments, merging user overrides into them, and checking what users typed.

This is ground-floor data support shared by the CLI and the Python API, so it imports only the standard library,
``yaml`` and ``ultralytics.utils``; it never reaches up into ``nn``, ``data``, ``engine`` or ``models``. Nothing is
read from disk at import time: the default YAML is loaded on first use and cached.
"""

import ast
import difflib
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from ultralytics.utils import DEFAULT_CFG_PATH, LOGGER, yaml_load

__all__ = [
    "CFG_BOOL_KEYS",
    "CFG_FLOAT_KEYS",
    "CFG_FRACTION_KEYS",
    "CFG_INT_KEYS",
    "DEFAULT_CFG_PATH",
    "MODES",
    "SUPPORTED_TASKS",
    "TASKS",
    "IterableSimpleNamespace",
    "cfg2dict",
    "check_cfg",
    "check_dict_alignment",
    "get_cfg",
    "get_default_cfg",
    "parse_key_value_pair",
    "smart_value",
]

# Vocabulary of the ``yolo TASK MODE ARGS`` grammar, spelled as upstream spells it -------------------------------------
MODES = frozenset({"train", "val", "predict", "export", "track", "benchmark"})
TASKS = frozenset({"detect", "segment", "classify", "pose", "obb"})  # every upstream task name is understood ...
SUPPORTED_TASKS = frozenset({"detect"})  # ... but this fork only builds detection models
TASK2DATA = {"detect": "coco8.yaml"}
TASK2MODEL = {"detect": "yolo11n.pt"}
TASK2METRIC = {"detect": "metrics/mAP50-95(B)"}

# Value checks by key group (as upstream groups them) ------------------------------------------------------------------
CFG_FLOAT_KEYS = frozenset(  # int or float accepted, e.g. box=7 or box=7.5
    {"warmup_epochs", "box", "cls", "cls_pw", "dfl", "pose", "kobj", "rle", "angle", "degrees", "shear", "time"}
    | {"workspace", "batch", "dis", "dlog", "dgrad", "dlam"}
)
CFG_FRACTION_KEYS = frozenset(  # int or float within 0.0-1.0
    {"dropout", "lr0", "lrf", "momentum", "weight_decay", "warmup_momentum", "warmup_bias_lr", "fraction"}
    | {"hsv_h", "hsv_s", "hsv_v", "translate", "scale", "perspective", "flipud", "fliplr", "bgr", "mosaic"}
    | {"mixup", "cutmix", "copy_paste", "erasing", "multi_scale", "conf", "iou"}
)
CFG_INT_KEYS = frozenset(  # whole numbers only
    {"epochs", "patience", "workers", "seed", "close_mosaic", "mask_ratio", "max_det", "vid_stride", "line_width"}
    | {"nbs", "save_period"}
)
CFG_BOOL_KEYS = frozenset(  # True/False only
    {"save", "exist_ok", "verbose", "deterministic", "single_cls", "rect", "cos_lr", "overlap_mask", "val", "profile"}
    | {"cls_remap", "save_json", "dnn", "plots", "nms", "show", "save_txt", "save_conf", "save_crop", "save_frames"}
    | {"show_labels", "show_conf", "show_boxes", "visualize", "augment", "agnostic_nms", "retina_masks"}
    | {"optimize", "dynamic", "simplify"}
)

# Old spellings still seen in scripts: renamed keys map to (new key, value transform); removed keys are dropped.
DEPRECATED_KEYS = {
    "boxes": ("show_boxes", lambda v: v),
    "hide_labels": ("show_labels", lambda v: not bool(v)),
    "hide_conf": ("show_conf", lambda v: not bool(v)),
    "line_thickness": ("line_width", lambda v: v),
}
REMOVED_KEYS = frozenset({"label_smoothing", "save_hybrid", "crop_fraction"})
# Keys that upstream 8.4 folded into another one; refused (their values do not map one-to-one) with a pointer instead.
SUPERSEDED_KEYS = {"half": "quantize", "int8": "quantize", "end2end": "nms"}
IGNORED_OVERRIDE_KEYS = frozenset({"save_dir"})  # set by trainers; accepted only when the base config has it


class IterableSimpleNamespace(SimpleNamespace):
    """A SimpleNamespace that also iterates as ``(key, value)`` pairs and offers ``.get``.

    Trainers read arguments as attributes (``args.epochs``) while savers and loggers want them as a mapping
    (``dict(args)``); this class serves both without keeping two copies in sync.
    """

    def __iter__(self):
        """Yield ``(key, value)`` pairs so that ``dict(namespace)`` works."""
        return iter(vars(self).items())

    def __contains__(self, key):
        """Answer ``'epochs' in args`` by key, which the pair iteration alone would get wrong."""
        return key in vars(self)

    def __str__(self):
        """Show one ``key=value`` per line, the form users type on the CLI."""
        return "\n".join(f"{k}={v}" for k, v in self)

    def __getattr__(self, attr):
        """Name the missing key and where defaults live, instead of Python's bare AttributeError."""
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{attr}'. It may be missing from your custom config; "
            f"compare it with the defaults in {DEFAULT_CFG_PATH}"
        )

    def get(self, key, default=None):
        """Return the value of ``key``, or ``default`` when it is absent, like ``dict.get``."""
        return vars(self).get(key, default)


# Default configuration, loaded lazily ---------------------------------------------------------------------------------
def _none_strings_to_none(d):
    """Turn literal 'None'/'none' strings into None, since YAML reads them as text but users mean 'unset'."""
    return {k: None if isinstance(v, str) and v.lower() == "none" else v for k, v in d.items()}


@lru_cache(maxsize=1)
def _load_default_cfg():
    """Read default.yaml once per process; callers get copies so the cache can never be mutated."""
    return _none_strings_to_none(yaml_load(DEFAULT_CFG_PATH))


def get_default_cfg():
    """Return a fresh copy of the default arguments as a dict (read from disk only on the first call)."""
    return dict(_load_default_cfg())


def __getattr__(name):
    """Provide ``DEFAULT_CFG_DICT``, ``DEFAULT_CFG`` and ``DEFAULT_CFG_KEYS`` lazily so import stays free of I/O."""
    lazy = {
        "DEFAULT_CFG_DICT": _load_default_cfg,
        "DEFAULT_CFG_KEYS": lambda: frozenset(_load_default_cfg()),
        "DEFAULT_CFG": lambda: IterableSimpleNamespace(**_load_default_cfg()),
    }
    if name in lazy:
        return lazy[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Parsing user text ----------------------------------------------------------------------------------------------------
_WORD_VALUES = {"none": None, "true": True, "false": False}


def smart_value(v):
    """Convert one CLI value string to the Python value the user meant.

    ``None``/``true``/``false`` (any case) become None/True/False; numbers, lists, tuples and quoted strings are read
    with ``ast.literal_eval``, which, unlike ``eval``, can never run code; anything else stays a plain string (paths,
    model names, 'auto').

    Args:
        v (str): The text after ``=``.

    Returns:
        (Any): None, bool, int, float, list, tuple or str.
    """
    if not isinstance(v, str):
        return v
    if v.lower() in _WORD_VALUES:
        return _WORD_VALUES[v.lower()]
    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return v


def parse_key_value_pair(pair="key=value"):
    """Split ``'k=v'`` at the first '=' (values may hold '=' themselves) and convert the value with ``smart_value``.

    Args:
        pair (str): One CLI token such as ``'epochs=3'``.

    Returns:
        (tuple): ``(key, value)``.

    Raises:
        ValueError: When there is no '=', the key is empty or the value is empty, naming the token.
    """
    if "=" not in pair:
        raise ValueError(f"'{pair}' is not a key=value pair, i.e. try '{pair}=<value>'")
    k, v = (s.strip() for s in pair.split("=", 1))
    if not k:
        raise ValueError(f"'{pair}' has no key before '='")
    if not v:
        raise ValueError(f"missing '{k}' value, i.e. try '{k}=<value>'")
    return k, smart_value(v)


# Merging and checking -------------------------------------------------------------------------------------------------
def cfg2dict(cfg):
    """Accept a YAML path, dict or namespace and return a new dict, so callers never mutate what they were given.

    Args:
        cfg (str | Path | dict | SimpleNamespace | None): Configuration source; None means the defaults.

    Returns:
        (dict): A copy of the configuration.
    """
    if cfg is None or (isinstance(cfg, (str, Path)) and Path(cfg) == DEFAULT_CFG_PATH):
        return get_default_cfg()
    if isinstance(cfg, (str, Path)):
        return _none_strings_to_none(yaml_load(cfg))
    if isinstance(cfg, SimpleNamespace):
        return dict(vars(cfg))
    if isinstance(cfg, dict):
        return dict(cfg)
    raise TypeError(f"cfg must be a YAML path, dict or namespace, got {type(cfg).__name__}")


def _handle_deprecation(custom):
    """Rename or drop outdated keys (with a warning) so old scripts keep running instead of failing alignment."""
    for old in DEPRECATED_KEYS.keys() & custom.keys():
        new, transform = DEPRECATED_KEYS[old]
        LOGGER.warning(f"'{old}' is deprecated and will be removed in the future, use '{new}' instead.")
        custom[new] = transform(custom.pop(old))
    for old in REMOVED_KEYS & custom.keys():
        LOGGER.warning(f"'{old}' is deprecated and has no effect; it is ignored.")
        custom.pop(old)
    return custom


def _suggestions(key, base):
    """List the valid keys closest to a mistyped one, shown as 'k=default' where a default exists."""
    matches = difflib.get_close_matches(key, list(base))
    return [f"{k}={base[k]}" if base.get(k) is not None else k for k in matches]


def check_dict_alignment(base, custom, e=None):
    """Refuse keys of ``custom`` that ``base`` does not know, suggesting the closest valid ones.

    One check serves the CLI and the Python API, so ``yolo train epoch=3`` and ``YOLO(...).train(epoch=3)`` fail with
    the same message. Deprecated keys in ``custom`` are renamed in place first.

    Args:
        base (dict): The valid keys (and defaults used in the suggestions).
        custom (dict): The user's keys; modified in place for deprecated names.
        e (Exception, optional): The parsing error that led here, chained for context.

    Raises:
        SyntaxError: Listing each unknown key, e.g. "'epoch' is not a valid YOLO argument. Similar arguments are
            i.e. ['epochs=100']."
    """
    custom = _handle_deprecation(custom)
    unknown = [k for k in custom if k not in base]
    if not unknown:
        return
    lines = []
    for key in unknown:
        similar = _suggestions(key, base)
        hint = f" Similar arguments are i.e. {similar}." if similar else ""
        if SUPERSEDED_KEYS.get(key) in base:
            hint += f" Upstream 8.4 covers '{key}' with '{SUPERSEDED_KEYS[key]}'."
        lines.append(f"'{key}' is not a valid YOLO argument.{hint}")
    lines.append(f"See valid arguments with 'yolo cfg' or in {DEFAULT_CFG_PATH}")
    raise SyntaxError("\n".join(lines)) from e


def _is_number(v):
    """True for ints and floats; bools count too (as in upstream), since ``flipud=True`` reads as 1.0."""
    return isinstance(v, (int, float))


def _check_float(k, v, hard):
    """Validate a key that takes any number."""
    if _is_number(v):
        return v
    if hard:
        raise TypeError(
            f"'{k}={v}' is of invalid type {type(v).__name__}. "
            f"Valid '{k}' types are int (i.e. '{k}=0') or float (i.e. '{k}=0.5')"
        )
    return float(v)


def _check_fraction(k, v, hard):
    """Validate a key that takes a number within 0.0-1.0 (probabilities, rates, fractions)."""
    v = _check_float(k, v, hard)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"'{k}={v}' is an invalid value. Valid '{k}' values are between 0.0 and 1.0.")
    return v


def _check_int(k, v, hard):
    """Validate a whole-number key; True is refused because ``epochs=True`` would silently mean one epoch."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if hard:
        raise TypeError(f"'{k}={v}' is of invalid type {type(v).__name__}. '{k}' must be an int (i.e. '{k}=8')")
    return int(v)


def _check_bool(k, v, hard):
    """Validate an on/off key."""
    if isinstance(v, bool):
        return v
    if hard:
        raise TypeError(
            f"'{k}={v}' is of invalid type {type(v).__name__}. '{k}' must be a bool (i.e. '{k}=True' or '{k}=False')"
        )
    return bool(v)


_KEY_CHECKS = (
    (CFG_FLOAT_KEYS, _check_float),
    (CFG_FRACTION_KEYS, _check_fraction),
    (CFG_INT_KEYS, _check_int),
    (CFG_BOOL_KEYS, _check_bool),
)


def check_cfg(cfg, hard=True):
    """Check value types (and 0-1 ranges) key by key, so a typo fails at the start of a run and not hours into it.

    None values are skipped: they mean 'unset' for optional keys.

    Args:
        cfg (dict): Arguments to check; with ``hard=False`` bad types are converted in place instead.
        hard (bool): Raise on a wrong type (True) or coerce it (False). Out-of-range fractions always raise.

    Raises:
        TypeError: A value of the wrong type, naming the key, the value and the expected type.
        ValueError: A fraction outside 0.0-1.0.
    """
    for k, v in cfg.items():
        if v is None:
            continue
        for keys, check in _KEY_CHECKS:
            if k in keys:
                cfg[k] = check(k, v, hard)
                break


def _merge_cfg_file(overrides):
    """Expand ``cfg=custom.yaml`` inside overrides: the file's keys apply first and explicit overrides win."""
    path = overrides.get("cfg")
    if not isinstance(path, (str, Path)) or not str(path):
        return overrides
    LOGGER.info(f"Overriding {DEFAULT_CFG_PATH} with {path}")
    from_file = {k: v for k, v in cfg2dict(path).items() if k != "cfg"}
    return {**from_file, **overrides}


def _normalise_names(cfg):
    """Make ``project``/``name`` strings (YAML reads name=1 as int) and expand ``name=model`` to the model stem."""
    for k in ("project", "name"):
        if isinstance(cfg.get(k), (int, float)) and not isinstance(cfg.get(k), bool):
            cfg[k] = str(cfg[k])
    if cfg.get("name") == "model":
        cfg["name"] = Path(str(cfg.get("model") or "")).stem
        LOGGER.warning(f"'name=model' automatically updated to 'name={cfg['name']}'.")


def get_cfg(cfg=DEFAULT_CFG_PATH, overrides=None):
    """Build the argument namespace for a run: base config plus checked overrides.

    Args:
        cfg (str | Path | dict | SimpleNamespace | None): Base configuration; defaults to default.yaml.
        overrides (dict | str | Path | SimpleNamespace, optional): User arguments, which win over ``cfg``. A
            ``cfg=custom.yaml`` entry is expanded under them.

    Returns:
        (IterableSimpleNamespace): The merged arguments.

    Raises:
        SyntaxError: An override key that ``cfg`` does not know (with suggestions).
        TypeError | ValueError: A value of the wrong type or range (see ``check_cfg``).
    """
    cfg = cfg2dict(cfg)
    if overrides:
        overrides = _merge_cfg_file(cfg2dict(overrides))
        for k in IGNORED_OVERRIDE_KEYS - cfg.keys():
            overrides.pop(k, None)
        check_dict_alignment(cfg, overrides)
        cfg = {**cfg, **overrides}
    _normalise_names(cfg)
    check_cfg(cfg)
    return IterableSimpleNamespace(**cfg)
