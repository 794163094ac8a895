"""Safe checkpoint I/O: read this fork's and upstream's ``.pt`` files without running pickled code.

This fork writes checkpoints that hold only plain data (tensors, dicts, lists, tuples, str, int, float, bool,
None), so ``torch.load(weights_only=True)`` reads them. Upstream Ultralytics and tutorial-made forks instead
pickle whole ``nn.Module`` objects, whose classes this package does not (and must not) import. Those files are
read with a restricted unpickler that turns every ``ultralytics.*`` and ``torch.nn.modules.*`` class into an
inert :class:`StandIn` recording its class path and state, allows a short list of data-only torch, numpy and
stdlib callables, and refuses everything else with :class:`UnsafeCheckpointError`. The weights are then read
back out of the stand-in tree the way ``nn.Module.state_dict()`` would have produced them.
"""

import _compat_pickle
import codecs
import collections
import contextlib
import copyreg
import datetime
import enum
import functools
import io
import os
import pathlib
import pickle
import secrets
import types
from pathlib import Path

import numpy as np
import torch

__all__ = (
    "StandIn",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "load_raw",
    "save_checkpoint",
    "standin_state_dict",
    "to_plain",
)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asked to unpickle a global outside the allowlist, so loading stopped before running it.

    Attributes:
        global_name (str): The refused ``module.name``.
        path (str | None): The checkpoint file, once known.
    """

    def __init__(self, global_name, path=None):
        """Keep the refused name and file so callers and logs can say exactly what was blocked and where."""
        self.global_name, self.path = global_name, path
        where = f" in checkpoint '{path}'" if path else ""
        super().__init__(
            f"Refused to unpickle global '{global_name}'{where}: it is not on the allowlist of data-only "
            "classes, so the file may run arbitrary code. Only load checkpoints from sources you trust."
        )


class StandIn:
    """Inert placeholder for a pickled class this package will not import (upstream modules, torch layers).

    Creating, calling or restoring one only records data: the constructor arguments in ``_standin_args`` and
    the pickled state in ``__dict__`` (exactly what ``nn.Module`` pickles: ``_parameters``, ``_buffers``,
    ``_modules``, plain attributes). The class path lives on the class as ``__standin_path__`` so that pickled
    state can never overwrite it.
    """

    __standin_path__ = "?"

    def __new__(cls, *args, **kwargs):
        """Record constructor arguments instead of running any constructor (pickle's NEWOBJ/REDUCE land here)."""
        obj = super().__new__(cls)
        obj.__dict__["_standin_args"] = (args, kwargs) if kwargs else args
        return obj

    def __init__(self, *args, **kwargs):
        """Accept and ignore arguments: ``__new__`` already recorded them."""

    def __setstate__(self, state):
        """Store pickled state as attributes; a ``(dict, slots)`` pair or non-dict state is kept too."""
        if isinstance(state, tuple) and len(state) == 2 and all(s is None or isinstance(s, dict) for s in state):
            for part in state:
                self.__dict__.update(part or {})
        elif isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_standin_state"] = state

    def __repr__(self):
        """Show the original class path, which is what matters when inspecting a loaded tree."""
        return f"<StandIn {type(self).__standin_path__}>"


@functools.lru_cache(maxsize=4096)
def _standin_class(module, name):
    """Make (once per path) an inert class whose name and module mirror the pickled one, for readable trees."""
    return type(name, (StandIn,), {"__module__": module, "__qualname__": name, "__standin_path__": f"{module}.{name}"})


def _checked_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, limited to latin-1 so no codec can be chosen."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafeCheckpointError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _checked_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` (protocol 0/1 objects), limited to building stand-ins on ``object``."""
    if base is object and isinstance(cls, type) and issubclass(cls, StandIn):
        return copyreg._reconstructor(cls, base, state)
    raise UnsafeCheckpointError(f"copyreg._reconstructor for {cls!r} on {base!r}")


def _np_frombuffer(buf, dtype, shape, order):
    """numpy's protocol-5 ``_frombuffer``: view raw bytes as an array, nothing more."""
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _numpy_globals():
    """Data-only numpy callables under every module path numpy 1.x and 2.x pickle them with."""
    reconstruct = np.zeros(1).__reduce__()[0]  # ndarray rebuild: allocates an empty array of a given dtype
    scalar = np.float64(0).__reduce__()[0]  # scalar rebuild from raw bytes
    found = {"numpy.dtype": np.dtype, "numpy.ndarray": np.ndarray}
    for core in ("numpy.core", "numpy._core"):
        found[f"{core}.multiarray._reconstruct"] = reconstruct
        found[f"{core}.multiarray.scalar"] = scalar
        found[f"{core}.numeric._frombuffer"] = _np_frombuffer
    return found


@functools.lru_cache(maxsize=1)
def _allowlist():
    """Every global the restricted unpickler may return, keyed by ``module.name``; built on first use."""
    from torch import _utils as tu

    allowed = {
        "collections.OrderedDict": collections.OrderedDict,
        "types.SimpleNamespace": types.SimpleNamespace,
        "copyreg._reconstructor": _checked_reconstructor,
        "_codecs.encode": _checked_encode,
        "datetime.datetime": datetime.datetime,
        "datetime.date": datetime.date,
        "datetime.timedelta": datetime.timedelta,
        "datetime.timezone": datetime.timezone,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
        "torch._utils._rebuild_tensor": tu._rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": tu._rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": tu._rebuild_parameter,
    }
    for cls in (set, frozenset, slice, complex, range, bytes, bytearray, dict, list, tuple, int, float, str, bool):
        allowed[f"builtins.{cls.__name__}"] = cls
    for module in ("pathlib", "pathlib._local"):  # Paths become pure paths: a WindowsPath cannot exist on Linux
        for name, cls in (("PosixPath", pathlib.PurePosixPath), ("WindowsPath", pathlib.PureWindowsPath)):
            allowed[f"{module}.{name}"] = cls
            allowed[f"{module}.Pure{name}"] = cls
    allowed.update({f"torch.{n}": v for n, v in vars(torch).items() if isinstance(v, torch.dtype)})
    allowed.update(_numpy_globals())
    return allowed


def _resolve_global(module, name):
    """Map a pickled global to an allowed object or a stand-in class, or refuse it; never imports anything."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))  # Python 2 spellings
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    path = f"{module}.{name}"
    if module == "ultralytics" or module.startswith(("ultralytics.", "torch.nn.modules.")):
        return _standin_class(module, name)
    found = _allowlist().get(path)
    if found is None:
        raise UnsafeCheckpointError(path)
    return found


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose every global lookup goes through the allowlist in ``_resolve_global``."""

    def find_class(self, module, name):
        """Return an allowed or stand-in class; any other global raises ``UnsafeCheckpointError``."""
        return _resolve_global(module, name)


def _restricted_load(file, **kwargs):
    """``pickle.load`` with the restricted unpickler (torch's legacy format reads headers through this)."""
    return RestrictedUnpickler(file, **kwargs).load()


def _restricted_loads(data, **kwargs):
    """``pickle.loads`` with the restricted unpickler, for completeness of the pickle-module interface."""
    return _restricted_load(io.BytesIO(data), **kwargs)


# What torch.load(pickle_module=...) needs: ``Unpickler`` (subclassed by torch), ``load`` (legacy headers).
restricted_pickle = types.SimpleNamespace(
    __name__="ultralytics.utils.checkpoint.restricted_pickle",
    Unpickler=RestrictedUnpickler,
    UnpicklingError=pickle.UnpicklingError,
    load=_restricted_load,
    loads=_restricted_loads,
)


def load_raw(path):
    """Unpickle an upstream-style checkpoint into plain data plus ``StandIn`` trees, refusing unsafe globals.

    Use this to inspect attributes ``load_checkpoint`` does not copy out (e.g. a head's ``reg_max``).

    Args:
        path (str | Path): The ``.pt`` file.

    Returns:
        (Any): The unpickled top-level object, usually a dict.

    Raises:
        UnsafeCheckpointError: If the file names a global outside the allowlist; nothing is executed.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle)
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(e.global_name, str(path)) from None


# ----------------------------------------------------------------------------------------------- plain data


def _tensor_plain(t):
    """A detached CPU tensor; ``detach`` also turns a Parameter into a plain ``Tensor``."""
    return t.detach().cpu()


def _module_state(module):
    """``state_dict`` of a real ``nn.Module`` or a stand-in one, as plain tensors."""
    if isinstance(module, torch.nn.Module):
        return collections.OrderedDict((k, _tensor_plain(v)) for k, v in module.state_dict().items())
    return standin_state_dict(module, float32=False)


def to_plain(obj, _where="ckpt"):
    """Convert ``obj`` to data ``torch.load(weights_only=True)`` accepts, so saved checkpoints stay safe to read.

    Paths, dtypes and devices become strings, namespaces and other objects with ``__dict__`` become dicts,
    numpy scalars become Python numbers, numeric numpy arrays and Parameters become plain tensors, sets become
    lists, enums their values, and modules (real or stand-in) their state dicts. Unknown types raise so
    nothing is silently dropped.

    Args:
        obj (Any): The value to convert.
        _where (str): Key path used in error messages.

    Returns:
        (Any): Tensors, dicts, lists, tuples, str, bytes, int, float, bool and None only.
    """
    if obj is None or type(obj) in (bool, int, float, str, bytes):
        return obj
    if isinstance(obj, torch.Tensor):
        return _tensor_plain(obj)
    if _is_model(obj):
        return _module_state(obj)
    if isinstance(obj, dict):
        out = collections.OrderedDict() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[to_plain(k, f"{_where}.key")] = to_plain(v, f"{_where}[{k!r}]")
        return out
    if isinstance(obj, (set, frozenset)):
        obj = sorted(obj, key=repr)  # sets are unordered; sort so saved files are reproducible
    if isinstance(obj, (list, tuple)) and not isinstance(obj, torch.Size):
        seq = [to_plain(v, f"{_where}[{i}]") for i, v in enumerate(obj)]
        return tuple(seq) if type(obj) is tuple else seq  # namedtuples become lists: their class is not data
    return _scalar_plain(obj, _where)


def _scalar_plain(obj, where):
    """The non-container cases of ``to_plain``; split out to keep each function short."""
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value, where)
    for kind in (bool, int, float, str, bytes):  # subclasses of builtins (e.g. numpy.float64 is a float)
        if isinstance(obj, kind):
            return kind(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy()) if obj.dtype.kind in "biuf" else to_plain(obj.tolist(), where)
    if isinstance(obj, torch.Size):
        return tuple(int(v) for v in obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(
        obj, (pathlib.PurePath, torch.dtype, torch.device, complex, slice, range, datetime.timedelta, datetime.tzinfo)
    ):
        return str(obj)
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, bytearray):
        return bytes(obj)
    if isinstance(obj, type):  # a class reference (maybe a stand-in class): keep its name, never the class
        return getattr(obj, "__standin_path__", f"{obj.__module__}.{obj.__qualname__}")
    if hasattr(obj, "__dict__") and not callable(obj):  # SimpleNamespace, upstream IterableSimpleNamespace, ...
        return to_plain({k: v for k, v in vars(obj).items() if k != "_standin_args"}, where)
    raise TypeError(f"to_plain: cannot store {type(obj).__name__} at {where} in a weights-only checkpoint")


# ------------------------------------------------------------------------------------------ stand-in trees


def standin_state_dict(root, float32=True):
    """Rebuild ``nn.Module.state_dict()`` from a stand-in tree: same keys, same order.

    Walks ``_modules`` depth-first; each module contributes its non-None ``_parameters`` then its non-None
    ``_buffers`` not listed in ``_non_persistent_buffers_set``, named by the dotted path of module names.

    Args:
        root (StandIn): The stand-in of the top module (e.g. upstream's ``DetectionModel``).
        float32 (bool): Cast floating-point tensors to float32 (upstream stores fp16); integer buffers such
            as ``num_batches_tracked`` keep their dtype.

    Returns:
        (collections.OrderedDict): Name to detached CPU tensor.
    """
    out = collections.OrderedDict()
    stack = [("", root)]
    while stack:
        prefix, mod = stack.pop()
        d = vars(mod)
        skip = set(d.get("_non_persistent_buffers_set") or ())
        for kind in ("_parameters", "_buffers"):
            for name, t in (d.get(kind) or {}).items():
                if t is not None and not (kind == "_buffers" and name in skip):
                    t = _tensor_plain(t)
                    out[prefix + name] = t.float() if float32 and t.is_floating_point() else t
        children = [(f"{prefix}{n}.", m) for n, m in (d.get("_modules") or {}).items() if m is not None]
        stack.extend(reversed(children))
    return out


def _attr(obj, name, default=None):
    """Attribute of a stand-in (or real object) without triggering any code beyond a dict lookup."""
    return vars(obj).get(name, default) if isinstance(obj, StandIn) else getattr(obj, name, default)


def _class_path(obj):
    """The original class path of a stand-in, or the real type's qualified name."""
    if isinstance(obj, StandIn):
        return type(obj).__standin_path__
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def names_dict(names):
    """Class names as ``{int: str}`` whether stored as a dict (possibly str keys, as JSON leaves them) or a list."""
    if isinstance(names, (list, tuple)):
        return {i: str(n) for i, n in enumerate(names)}
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    return {}


# ------------------------------------------------------------------------------------------------ loading


def _is_model(obj):
    """Whether ``obj`` is a pickled module (a real one, or a stand-in carrying a module's bookkeeping dicts)."""
    if isinstance(obj, torch.nn.Module):
        return True
    state = vars(obj) if isinstance(obj, StandIn) else {}
    return isinstance(state.get("_modules"), dict) and isinstance(state.get("_parameters"), dict)


def _is_state_dict(obj):
    """Whether ``obj`` is a non-empty mapping of names to tensors (a bare ``state_dict``)."""
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _float32(state):
    """Copy of a state dict with floating tensors in float32, so both sources hand back the same dtypes."""
    if state is None:
        return None
    return collections.OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in state.items())


def _normalise_fork(ckpt):
    """Normalise a weights-only (fork) checkpoint; a bare state dict counts as one with only weights."""
    if _is_state_dict(ckpt):
        ckpt = {"model_state": ckpt}
    if not isinstance(ckpt, dict):
        raise TypeError(f"checkpoint holds a {type(ckpt).__name__}, expected a dict")
    model = ckpt.get("model_state", ckpt.get("model"))
    ema = ckpt.get("ema_state", ckpt.get("ema"))
    yaml_cfg = ckpt.get("yaml") or {}
    names = names_dict(ckpt.get("names") or yaml_cfg.get("names"))
    return {
        "model_state": _float32(model if _is_state_dict(model) else None),
        "ema_state": _float32(ema if _is_state_dict(ema) else None),
        "yaml": yaml_cfg,
        "names": names,
        "nc": ckpt.get("nc", yaml_cfg.get("nc", len(names) or None)),
        "stride": ckpt.get("stride"),
        "train_args": dict(ckpt.get("train_args") or {}),
        "epoch": ckpt.get("epoch", -1),
        "optimizer": ckpt.get("optimizer"),
        "model_class": ckpt.get("model_class"),
        "source": "fork",
        "raw": ckpt,
    }


def _normalise_upstream(ckpt):
    """Normalise an upstream/tutorial checkpoint: weights from ``ema`` (as upstream prefers) else ``model``."""
    if _is_model(ckpt):  # a bare pickled model (torch.save(model))
        ckpt = {"model": ckpt}
    if not isinstance(ckpt, dict):
        raise TypeError(f"checkpoint holds a {type(ckpt).__name__}, expected a dict")
    ema = ckpt.get("ema") if _is_model(ckpt.get("ema")) else None
    model = ckpt.get("model") if _is_model(ckpt.get("model")) else None
    model = ema if ema is not None else model  # upstream runs the EMA weights when a file has both
    if model is None:
        raise ValueError("upstream checkpoint has neither a 'model' nor an 'ema' module")
    yaml_cfg = to_plain(_attr(model, "yaml") or {})
    names = names_dict(to_plain(_attr(model, "names")) or yaml_cfg.get("names"))
    stride = _attr(model, "stride")
    nc = _attr(model, "nc", yaml_cfg.get("nc", len(names) or None))
    raw = {k: (f"<{_class_path(v)}>" if _is_model(v) else to_plain(v, f"ckpt[{k!r}]")) for k, v in ckpt.items()}
    return {
        "model_state": standin_state_dict(model),
        "ema_state": standin_state_dict(ema) if ema is not None else None,
        "yaml": yaml_cfg if isinstance(yaml_cfg, dict) else {},
        "names": names,
        "nc": int(nc) if nc is not None else None,
        "stride": [float(s) for s in to_plain(stride).tolist()] if isinstance(stride, torch.Tensor) else stride,
        "train_args": dict(raw.get("train_args") or {}),
        "epoch": raw.get("epoch", -1),
        "optimizer": None,
        "model_class": _class_path(model),
        "source": "upstream",
        "raw": raw,
    }


def load_checkpoint(path):
    """Load a fork or upstream checkpoint without executing pickled code, in one normalised shape.

    Fork checkpoints load with ``torch.load(weights_only=True)``. If torch refuses the file as not weights-only,
    it is re-read with the restricted unpickler (see module docstring), which raises
    :class:`UnsafeCheckpointError` on any global outside the allowlist before anything can run.

    Args:
        path (str | Path): The ``.pt`` file.

    Returns:
        (dict): ``model_state`` (OrderedDict of tensors; floating ones float32), ``ema_state`` (or None),
            ``yaml``, ``names`` ({int: str}), ``nc``, ``stride``, ``train_args`` (dict), ``epoch``,
            ``optimizer`` (fork only, else None), ``model_class``, ``source`` ('fork' or 'upstream') and
            ``raw`` (the top-level dict as plain data; pickled modules appear as ``'<class.path>'``).

    Raises:
        UnsafeCheckpointError: If the file would need a global outside the allowlist (e.g. ``os.system``).
        FileNotFoundError: If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's weights-only unpickler refused a global: try the restricted one
        raw = load_raw(path)
        holds_module = _is_model(raw) or (isinstance(raw, dict) and any(map(_is_model, raw.values())))
        return _normalise_upstream(raw) if holds_module else _normalise_fork(to_plain(raw))
    return _normalise_fork(ckpt)


# ------------------------------------------------------------------------------------------------- saving


def _fsync_dir(folder):
    """Flush the directory entry so the rename itself survives a power cut (best effort; not on Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(ckpt, path):
    """Save ``ckpt`` atomically as weights-only-loadable data, so a crash mid-save never corrupts ``path``.

    The data (passed through :func:`to_plain`) is written to a hidden temporary file in the same folder, flushed
    and fsynced, then moved over ``path`` with ``os.replace``; on any error the temporary file is removed and the
    previous ``path`` is untouched. The temporary file is created with mode 0o666 so the umask applies as it
    would for a normal file.

    Args:
        ckpt (dict): Checkpoint contents, e.g. ``model_state``, ``ema_state``, ``optimizer``, ``yaml``,
            ``names``, ``train_args``, ``epoch``.
        path (str | Path): Destination file.

    Returns:
        (Path): The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_plain(ckpt)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path
