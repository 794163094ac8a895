"""Tests for safe checkpoint I/O: upstream fixtures, refusal of malicious pickles, atomic weights-only saves."""

import collections
import enum
import functools
import os
import pickle
import stat
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ultralytics.utils import checkpoint as ckpt_io
from ultralytics.utils.checkpoint import (
    StandIn,
    UnsafeCheckpointError,
    load_checkpoint,
    load_raw,
    save_checkpoint,
    to_plain,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
UPSTREAM = SHARED / "fixtures" / "upstream"
UPSTREAM_PTS = sorted(UPSTREAM.glob("*.pt")) if UPSTREAM.is_dir() else []
DYSAMPLE = "ultralytics.nn.modules.Addmodules.DySample.Dy_Sample"  # the tutorial graft's class path
needs_fixtures = pytest.mark.skipif(not UPSTREAM_PTS, reason="shared upstream fixtures not present")


@functools.cache
def _load_fixture(name):
    """Load each upstream fixture once per session; tests only read the result."""
    return load_checkpoint(UPSTREAM / name)


# ----------------------------------------------------------------------------------------- upstream fixtures


@needs_fixtures
@pytest.mark.parametrize("pt", UPSTREAM_PTS, ids=lambda p: p.stem)
def test_upstream_weights_match_npz(pt):
    """Every upstream key, shape, dtype and value equals the plain-array copy; nothing missing or extra."""
    before = set(sys.modules)
    ckpt = _load_fixture(pt.name)
    assert not {m for m in set(sys.modules) - before if m.startswith("ultralytics.nn")}, "loader imported classes"
    ref = np.load(pt.with_name(pt.stem + ".state.npz"), allow_pickle=False)
    state = ckpt["model_state"]
    assert list(state) == list(ref.keys())  # same keys in state_dict order
    for k, v in state.items():
        assert tuple(v.shape) == ref[k].shape, k
        assert v.numpy().dtype == ref[k].dtype, k  # floats fp16 -> fp32, num_batches_tracked stays int64
        np.testing.assert_array_equal(v.numpy(), ref[k], err_msg=k)
    assert ckpt["source"] == "upstream" and ckpt["model_class"] == "ultralytics.nn.tasks.DetectionModel"
    assert ckpt["stride"] == [8.0, 16.0, 32.0] and ckpt["optimizer"] is None
    assert ckpt["nc"] == len(ckpt["names"]) == ckpt["yaml"]["nc"]
    assert isinstance(ckpt["train_args"], dict) and ckpt["train_args"]["task"] == "detect"
    assert ckpt["raw"]["model"] == "<ultralytics.nn.tasks.DetectionModel>" and ckpt["raw"]["version"]
    assert ckpt["epoch"] == ckpt["raw"]["epoch"]


@needs_fixtures
@pytest.mark.parametrize("name", ["bccd-yolo11n.pt", "bccd-yolo11n-dysample.pt"])
def test_upstream_bccd_metadata(name):
    """The BCCD checkpoints recover their 3 class names and the tutorial's Dy_Sample layers where present."""
    ckpt = _load_fixture(name)
    assert ckpt["names"] == {0: "RBC", 1: "WBC", 2: "Platelets"} and ckpt["nc"] == 3
    layers = [layer[2] for layer in ckpt["yaml"]["head"]]
    if "dysample" in name:
        assert layers.count("Dy_Sample") == 2
        assert {"model.11.offset.weight", "model.11.offset.bias", "model.14.init_pos"} <= set(ckpt["model_state"])
    else:
        assert "Dy_Sample" not in layers and layers.count("nn.Upsample") == 2


@needs_fixtures
def test_upstream_raw_tree_is_inert():
    """``load_raw`` gives stand-ins named after upstream's classes, including the tutorial's graft."""
    raw = load_raw(UPSTREAM / "bccd-yolo11n-dysample.pt")
    layers = vars(raw["model"])["_modules"]["model"]
    up = vars(layers)["_modules"]["11"]  # first head layer; 0-10 are the backbone
    assert isinstance(up, StandIn) and type(up).__standin_path__ == DYSAMPLE
    assert type(vars(layers)["_modules"]["0"]).__standin_path__ == "ultralytics.nn.modules.conv.Conv"


@needs_fixtures
def test_upstream_converts_to_fork_checkpoint(tmp_path):
    """An upstream file re-saved by this fork loads weights-only with identical weights."""
    up = _load_fixture("bccd-yolo11n.pt")
    keep = ("model_state", "yaml", "names", "train_args", "epoch")
    out = save_checkpoint({k: up[k] for k in keep}, tmp_path / "a.pt")
    assert isinstance(torch.load(out, weights_only=True), dict)
    fork = load_checkpoint(out)
    assert fork["source"] == "fork" and fork["names"] == up["names"] and fork["yaml"] == up["yaml"]
    assert all(torch.equal(fork["model_state"][k], v) for k, v in up["model_state"].items())


# -------------------------------------------------------------------------------------------- refusal


class _Evil:
    """Pickles as a call to ``os.system`` that would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _EvalEvil:
    """Pickles as a call to ``builtins.eval``."""

    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


def _assert_refused(path, marker, names=("os.system", "posix.system", "nt.system")):
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert any(n in msg for n in names), msg
    assert str(path) in msg and info.value.path == str(path)
    assert not marker.exists(), "pickled code ran"


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-torch"])
def test_malicious_torch_checkpoint_refused(tmp_path, legacy):
    """A torch.save'd file whose pickle calls os.system is refused and the command never runs."""
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"model": _Evil(marker), "epoch": 1}, path, _use_new_zipfile_serialization=not legacy)
    _assert_refused(path, marker)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_malicious_plain_pickle_refused(tmp_path, protocol):
    """A bare (non-torch) pickle file is refused too, including at the legacy loader's first header read."""
    marker, path = tmp_path / "pwned", tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": _Evil(marker)}, protocol=protocol))
    _assert_refused(path, marker)


def test_eval_refused(tmp_path):
    """``builtins.eval`` is not data and is refused by name."""
    path = tmp_path / "eval.pt"
    torch.save({"x": _EvalEvil()}, path)
    _assert_refused(path, tmp_path / "none", names=("builtins.eval",))


@pytest.mark.parametrize(
    "module, name",
    [("builtins", "getattr"), ("builtins", "exec"), ("builtins", "__import__"), ("__builtin__", "eval"),
     ("subprocess", "Popen"), ("os", "system"), ("posix", "system"), ("torch", "load"),
     ("torch.storage", "_load_from_bytes"), ("numpy", "load"), ("copyreg", "__newobj__")],
)  # fmt: skip
def test_globals_outside_allowlist_refused(module, name):
    """The unpickler resolves no global outside its allowlist, whatever the spelling."""
    with pytest.raises(UnsafeCheckpointError):
        ckpt_io.RestrictedUnpickler.find_class(None, module, name)


def test_standins_are_inert():
    """Stand-ins record calls and state but run nothing; the class path cannot be overwritten by state."""
    cls = ckpt_io.RestrictedUnpickler.find_class(None, "ultralytics.nn.tasks", "DetectionModel")
    obj = cls("rm -rf /", flag=True)
    obj.__setstate__({"__standin_path__": "os.system", "yaml": {"nc": 1}})
    assert type(obj).__standin_path__ == "ultralytics.nn.tasks.DetectionModel"
    assert obj._standin_args == (("rm -rf /",), {"flag": True}) and obj.yaml == {"nc": 1}
    assert ckpt_io.RestrictedUnpickler.find_class(None, "torch.nn.modules.conv", "Conv2d").__mro__[1] is StandIn


# --------------------------------------------------------------------------------------------- saving


class _Color(enum.Enum):
    RED = 1


def _tiny_training_state():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    return model, opt


def test_to_plain_converts_everything_weights_only_needs(tmp_path):
    """Paths, namespaces, numpy values, sets, dtypes and modules become data ``weights_only`` accepts."""
    model, _ = _tiny_training_state()
    data = {
        "path": Path("/a/b"), "ns": types.SimpleNamespace(lr=np.float64(0.01), n=np.int64(3)), "set": {3, 1},
        "arr": np.arange(3, dtype=np.float32), "dtype": torch.float16, "size": torch.Size([1, 2]),
        "enum": _Color.RED, "model": model, "param": nn.Parameter(torch.ones(2)), "od": collections.OrderedDict(a=1),
    }  # fmt: skip
    plain = to_plain(data)
    assert plain["path"] == str(Path("/a/b")) and plain["ns"] == {"lr": 0.01, "n": 3} and plain["set"] == [1, 3]
    assert type(plain["ns"]["lr"]) is float and type(plain["ns"]["n"]) is int
    assert torch.equal(plain["arr"], torch.arange(3.0)) and plain["dtype"] == "torch.float16"
    assert plain["size"] == (1, 2) and plain["enum"] == 1 and type(plain["param"]) is torch.Tensor
    assert set(plain["model"]) == set(model.state_dict()) and isinstance(plain["od"], collections.OrderedDict)
    with pytest.raises(TypeError, match="lambda|function"):
        to_plain({"bad": lambda: 0})
    torch.save(plain, tmp_path / "p.pt")
    assert torch.load(tmp_path / "p.pt", weights_only=True)["ns"] == {"lr": 0.01, "n": 3}


def test_save_load_round_trip(tmp_path):
    """A fork checkpoint saves weights-only and loads back with model, EMA and optimizer state."""
    model, opt = _tiny_training_state()
    ckpt = {
        "model_state": model.state_dict(), "ema_state": model.half().state_dict(), "optimizer": opt.state_dict(),
        "yaml": {"nc": 2}, "names": ["a", "b"], "train_args": types.SimpleNamespace(data=Path("x.yaml")),
        "epoch": 4, "stride": [8.0, 16.0, 32.0],
    }  # fmt: skip
    path = save_checkpoint(ckpt, tmp_path / "sub" / "last.pt")
    assert isinstance(torch.load(path, weights_only=True), dict)
    out = load_checkpoint(path)
    assert out["source"] == "fork" and out["epoch"] == 4 and out["names"] == {0: "a", 1: "b"} and out["nc"] == 2
    assert out["train_args"] == {"data": "x.yaml"} and out["stride"] == [8.0, 16.0, 32.0]
    assert all(v.dtype != torch.float16 for v in out["ema_state"].values())
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    fresh.load_state_dict(out["model_state"])
    torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9).load_state_dict(out["optimizer"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_bare_state_dict_loads_as_fork(tmp_path):
    """A plain ``torch.save(model.state_dict())`` file is accepted as weights only."""
    model, _ = _tiny_training_state()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    out = load_checkpoint(tmp_path / "sd.pt")
    assert out["source"] == "fork" and list(out["model_state"]) == list(model.state_dict())


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_crash_during_save_keeps_previous_file(tmp_path, monkeypatch, exc):
    """A save that dies half-way leaves the old checkpoint intact and no temporary file behind."""
    path = save_checkpoint({"epoch": 1, "model_state": {"w": torch.ones(3)}}, tmp_path / "last.pt")

    def partial_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial zip data")
        f.flush()
        raise exc("killed mid-save")

    monkeypatch.setattr(torch, "save", partial_save)
    with pytest.raises(exc):
        save_checkpoint({"epoch": 2, "model_state": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    out = load_checkpoint(path)
    assert out["epoch"] == 1 and torch.equal(out["model_state"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.skipif(os.name != "posix", reason="umask is POSIX")
def test_saved_file_respects_umask(tmp_path):
    """The atomic temp file does not leave checkpoints private (0600) the way mkstemp would."""
    old = os.umask(0o022)
    try:
        path = save_checkpoint({"epoch": 0}, tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ------------------------------------------------------------------------------ fake upstream-like pickles


class _FakeDySample(nn.Module):
    """Parameters, a persistent buffer and a non-persistent one, like the tutorial's Dy_Sample."""

    def __init__(self):
        super().__init__()
        self.offset = nn.Conv2d(4, 8, 1)
        self.register_buffer("init_pos", torch.arange(4.0))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


class _FakeDetectionModel(nn.Module):
    """A module tree with a None child, a bias-less conv and plain attributes, like upstream's models."""

    def __init__(self, upsample_cls):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), upsample_cls(), nn.SiLU())
        self.missing = None
        self.yaml = {"nc": 2, "head": [[-1, 1, "Dy_Sample", [2, "lp"]]]}
        self.names = {0: "cat", 1: "dog"}
        self.nc = 2
        self.stride = torch.tensor([8.0, 16.0, 32.0])


def _upstream_class(monkeypatch, base, module, name):
    """Subclass ``base`` under an upstream class path and register throw-away modules so pickle can name it."""
    cls = type(name, (base,), {"__module__": module, "__qualname__": name})
    parts = module.split(".")
    for i in range(2, len(parts)):
        parent = ".".join(parts[:i])
        monkeypatch.setitem(sys.modules, parent, sys.modules.get(parent, types.ModuleType(parent)))
    fake = types.ModuleType(module)
    setattr(fake, name, cls)
    monkeypatch.setitem(sys.modules, module, fake)
    return cls


@pytest.mark.parametrize("layout", ["model", "ema"])
def test_fake_upstream_checkpoint(tmp_path, monkeypatch, layout):
    """A checkpoint pickling classes under upstream paths loads as stand-ins with the real state_dict."""
    path = tmp_path / "up.pt"
    with monkeypatch.context() as m:
        dysample = _upstream_class(m, _FakeDySample, "ultralytics.nn.modules.Addmodules.DySample", "Dy_Sample")
        model = _upstream_class(m, _FakeDetectionModel, "ultralytics.nn.tasks", "DetectionModel")(dysample).half()
        data = {"model": model, "ema": None} if layout == "model" else {"model": None, "ema": model}
        torch.save({**data, "epoch": 3, "train_args": {"imgsz": 64}, "version": "8.4.190"}, path)
    expected = {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    out = load_checkpoint(path)
    assert out["source"] == "upstream" and out["model_class"] == "ultralytics.nn.tasks.DetectionModel"
    assert list(out["model_state"]) == list(expected) and "model.2.scratch" not in out["model_state"]
    assert all(torch.equal(out["model_state"][k], v) for k, v in expected.items())
    assert (out["ema_state"] is not None) == (layout == "ema")
    assert out["names"] == {0: "cat", 1: "dog"} and out["nc"] == 2 and out["stride"] == [8.0, 16.0, 32.0]
    assert out["train_args"] == {"imgsz": 64} and out["epoch"] == 3 and out["raw"]["version"] == "8.4.190"
    tree = vars(load_raw(path)[layout])["_modules"]["model"]
    assert type(vars(tree)["_modules"]["2"]).__standin_path__ == DYSAMPLE
