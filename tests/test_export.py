"""Export: ONNX and TorchScript files give PyTorch's outputs, at the export size and (dynamic=True) at other sizes.

The model is yolo11n-dysample with its DySample offsets scaled up (a fresh DySample is almost plain bilinear
upsampling, which would hide a sampling grid frozen at the export size). Exports run once per module and are
shared. Tolerances: scores (sigmoid, 0..1) to 1e-4 absolute; boxes are in input pixels, so to 1e-4 of the largest
box value (float32 rounding of values in the hundreds).
"""

import warnings

import cv2
import numpy as np
import pytest
import torch

from ultralytics.engine.exporter import Exporter, check_export_imgsz, check_opset, export_precision
from ultralytics.nn.autobackend import AutoBackend
from ultralytics.nn.modules.Addmodules import DySample
from ultralytics.nn.tasks import DetectionModel

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

IMGSZ = 160
OTHER_SIZES = [(1, 128, 160), (2, 224, 192)]  # (batch, h, w): non-square, smaller and larger than the export
NAMES = {i: f"class {i}" for i in range(80)} | {0: "person", 1: 'it\'s a "bike"'}  # quotes survive the round trip
TOL = 1e-4


def _fused_copy(model):
    """A fused deep copy, without fuse()'s summary (its FLOPs count costs seconds on a CPU and is not under test)."""
    from copy import deepcopy

    model = deepcopy(model).requires_grad_(False)
    model.info = lambda *args, **kwargs: None
    with torch.no_grad():
        model.fuse(verbose=False)
    del model.info
    return model


@pytest.fixture(scope="module")
def model():
    """Fused yolo11n-dysample (fused once here, so the exporter's fuse() of its copy is a no-op)."""
    torch.manual_seed(0)
    m = DetectionModel("yolo11n-dysample.yaml", nc=80, verbose=False).eval()
    with torch.no_grad():
        for d in m.modules():
            if isinstance(d, DySample):
                d.offset.weight.normal_(std=0.3)  # offsets of a pixel or more, as a trained model has
    m = _fused_copy(m)
    m.names = dict(NAMES)
    return m


@pytest.fixture(scope="module")
def exports(model, tmp_path_factory):
    """Export lazily and cache: ``exports(fmt, dynamic)`` → path of ``best.<suffix>`` in its own folder."""
    cache = {}

    def get(fmt, dynamic, batch=1, imgsz=IMGSZ):
        key = (fmt, dynamic, batch, imgsz)
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{fmt}-{'dynamic' if dynamic else 'static'}")
            model.pt_path = str(folder / "best.pt")  # exported files are named after (and beside) the weights
            try:
                args = {"format": fmt, "imgsz": imgsz, "batch": batch, "dynamic": dynamic}
                cache[key] = Exporter(overrides=args)(model)
            finally:
                del model.pt_path
        return cache[key]

    return get


def _max_diffs(model, backend, b, h, w):
    """(max |Δscore|, max |Δbox| / max |box|) of the backend against the PyTorch model on one random batch."""
    x = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(h * w + b))
    with torch.no_grad():
        ref = model(x)[0]
    out = backend(x)
    assert out.shape == ref.shape == (b, 84, (h * w) // 64 + (h * w) // 256 + (h * w) // 1024)
    score = (out[:, 4:] - ref[:, 4:]).abs().max().item()
    box = ((out[:, :4] - ref[:, :4]).abs().max() / ref[:, :4].abs().max()).item()
    return score, box


def _assert_close(model, backend, b, h, w):
    score, box = _max_diffs(model, backend, b, h, w)
    print(f"{backend.format} {b}x{h}x{w}: max |Δscore| {score:.2e}, max |Δbox|/max|box| {box:.2e}")
    assert score < TOL and box < TOL


# ------------------------------------------------------------------------------------------------------------ ONNX
def test_onnx_static_matches_pytorch(model, exports):
    f = exports("onnx", dynamic=False)
    assert f.endswith("best.onnx")
    backend = AutoBackend(f, verbose=False)
    assert not backend.dynamic and backend.session.get_inputs()[0].shape == [1, 3, IMGSZ, IMGSZ]
    assert [o.name for o in backend.session.get_outputs()] == ["output0"]
    _assert_close(model, backend, 1, IMGSZ, IMGSZ)
    with pytest.raises(ValueError, match=r"fixed input \(1, 3, 160, 160\).*dynamic=True"):
        backend(torch.zeros(1, 3, 128, 160))  # a clear error instead of onnxruntime's


@pytest.mark.parametrize("b,h,w", [(1, IMGSZ, IMGSZ), *OTHER_SIZES])
def test_onnx_dynamic_matches_pytorch_at_any_size(model, exports, b, h, w):
    backend = AutoBackend(exports("onnx", dynamic=True), verbose=False)
    inp, out = backend.session.get_inputs()[0], backend.session.get_outputs()[0]
    assert (inp.name, inp.shape) == ("images", ["batch", 3, "height", "width"])
    assert (out.name, out.shape[0], out.shape[2]) == ("output0", "batch", "anchors")
    _assert_close(model, backend, b, h, w)


def test_onnx_metadata_round_trip(model, exports):
    backend = AutoBackend(exports("onnx", dynamic=True), verbose=False)
    assert backend.names == NAMES and backend.stride == 32 and backend.imgsz == [IMGSZ, IMGSZ]
    meta = backend.metadata
    assert meta["batch"] == 1 and meta["task"] == "detect" and meta["channels"] == 3
    opset = check_opset(None, model)  # the default: torch's newest minus one, as upstream (19 with torch 2.14)
    assert meta["args"] == {"batch": 1, "dynamic": True, "quantize": None, "opset": opset, "simplify": True}
    assert meta["version"].startswith("8.4") and "YOLO11n-dysample" in meta["description"]


# ----------------------------------------------------------------------------------------------------- TorchScript
def test_torchscript_static_with_batch_2(model, exports):
    """batch=2 fixes the batch dimension: the file takes exactly (2, 3, 128, 128), its export size."""
    backend = AutoBackend(exports("torchscript", dynamic=False, batch=2, imgsz=128), verbose=False)
    assert backend.format == "torchscript" and not backend.dynamic and (backend.batch, backend.imgsz) == (2, [128, 128])
    with torch.jit.optimized_execution(False):  # see the dynamic test below
        _assert_close(model, backend, 2, 128, 128)
    with pytest.raises(ValueError, match=r"fixed input \(2, 3, 128, 128\)"):
        backend(torch.zeros(1, 3, 128, 128))


@pytest.mark.parametrize("b,h,w", [(1, IMGSZ, IMGSZ), *OTHER_SIZES])
def test_torchscript_dynamic_matches_pytorch_at_any_size(model, exports, b, h, w):
    """The trace generalises because DySample's grid and the head's anchors are traced from the input's shape.

    The JIT's profiling runs (seconds per new shape on a small CPU) are switched off to keep the tests fast; they
    only decide which kernels run, not what the graph computes.
    """
    backend = AutoBackend(exports("torchscript", dynamic=True), verbose=False)
    assert backend.dynamic and backend.names == NAMES and backend.stride == 32
    with torch.jit.optimized_execution(False):
        _assert_close(model, backend, b, h, w)


def test_exported_model_is_a_copy(model, exports):
    """Export mode is set on the exporter's copy only: the caller's Detect head still returns (y, maps)."""
    exports("onnx", dynamic=True)
    head = model.model[-1]
    assert not head.export and not head.dynamic and "export" not in vars(head) and "dynamic" not in vars(head)
    with torch.no_grad():
        assert isinstance(model(torch.zeros(1, 3, 64, 64)), tuple)


# --------------------------------------------------------------------------------------- DySample's dynamic grid
class _Reference(torch.nn.Module):
    """DySample through its paper-style forward, whose normaliser ``torch.tensor([w, h])`` is a traced constant."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m.forward_reference(x)


def test_dysample_dynamic_onnx_follows_the_input_size(tmp_path):
    """Our grid stays symbolic in a dynamic export; the naive normaliser silently gives wrong values elsewhere."""
    torch.manual_seed(0)
    m = DySample(16, dyscope=True).eval().requires_grad_(False)
    torch.nn.init.normal_(m.offset.weight, std=0.5)
    torch.nn.init.normal_(m.scope.weight, std=0.5)
    errors = {}
    for name, module in (("ours", m), ("naive", _Reference(m))):
        f = str(tmp_path / f"{name}.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, torch.rand(1, 16, 10, 10), f, opset_version=17, input_names=["x"], dynamo=False,
                dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}},
            )  # fmt: skip
        session = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
        x = torch.rand(2, 16, 7, 13)
        errors[name] = np.abs(session.run(None, {"x": x.numpy()})[0] - m(x).numpy()).max()
    assert errors["ours"] < 1e-5
    assert errors["naive"] > 0.05  # what this fork's grid avoids


# ------------------------------------------------------------------------------------------------ refused options
def test_opset_below_16_is_refused(model, tmp_path):
    model.pt_path = str(tmp_path / "best.pt")
    try:
        with pytest.raises(ValueError, match=r"opset=13 is too old: DySample's grid_sample .*opset >= 16"):
            Exporter(overrides={"format": "onnx", "imgsz": IMGSZ, "batch": 1, "opset": 13})(model)
    finally:
        del model.pt_path
    assert not list(tmp_path.iterdir())  # refused before anything was written
    assert check_opset(None, model) >= 16 and check_opset(16, model) == 16


@pytest.mark.parametrize(
    "fmt,match",
    [
        ("xyz", r"Invalid export format='xyz'. Valid formats are \('torchscript', 'onnx'\)"),
        ("openvino", r"format='openvino' is an upstream format this fork does not ship.*'torchscript', 'onnx'"),
        ("pt", "Model is already in PyTorch format"),
    ],
)
def test_unknown_format_is_refused(model, fmt, match):
    with pytest.raises(ValueError, match=match):
        Exporter(overrides={"format": fmt, "batch": 1})(model)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"nms": True}, "nms=True export is not supported"),
        ({"quantize": "int8"}, r"quantize=int8 \(int8\) is not supported for format='onnx'"),
        ({"quantize": "fp8"}, "quantize='fp8' is not understood"),
        ({"batch": 0}, "batch=0 must be a positive integer"),
    ],
)
def test_unsupported_options_are_refused(model, overrides, match):
    with pytest.raises(ValueError, match=match):
        Exporter(overrides={"format": "onnx", "imgsz": IMGSZ, "batch": 1, **overrides})(model)


def test_precision_and_size_arguments(ulogs):
    assert export_precision(None, "onnx") is False and export_precision(16, "onnx") is True
    assert export_precision("half", "torchscript") is True and export_precision("fp32", "onnx") is False
    assert check_export_imgsz(640, 32) == [640, 640] and check_export_imgsz([480, 640], 32) == [480, 640]
    assert check_export_imgsz([161], 32) == [192, 192] and any("updating to [192, 192]" in m for m in ulogs)
    with pytest.raises(ValueError, match="imgsz"):
        check_export_imgsz([1, 2, 3], 32)


def test_yolo_finds_the_exporter():
    from ultralytics.models.yolo.model import YOLO

    assert YOLO.task_map.fget(None)["detect"]["exporter"] is Exporter


# ----------------------------------------------------------------------------- a trained checkpoint (../shared)
def _letterboxed(path, shape):
    """A BCCD image letterboxed to ``shape`` (h, w) as the predictor feeds it: RGB, 0..1, (1, 3, h, w)."""
    from ultralytics.data.augment import LetterBox

    img = LetterBox(shape, auto=False)(image=cv2.imread(str(path)))
    return torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))).float()[None] / 255


def test_bccd_checkpoint_onnx_matches_pt(tmp_path):
    """Upstream-trained bccd-yolo11n-dysample.pt: dynamic ONNX (exported at 320) equals the unfused .pt model.

    Checked on a BCCD image letterboxed square (320×320) and as a rect batch (256×320, what ``rect`` feeds). The
    checkpoint is loaded once, as ``YOLO(pt).export()`` does, and handed to the exporter.
    """
    from conftest import require_shared

    from ultralytics.nn.tasks import attempt_load_one_weight

    src = require_shared("fixtures", "upstream", "bccd-yolo11n-dysample.pt")
    image = sorted(require_shared("datasets", "bccd-test", "images", "test").glob("*.jpg"))[0]
    weights = tmp_path / "bccd-yolo11n-dysample.pt"
    weights.write_bytes(src.read_bytes())  # ../shared is read-only; the export lands beside the weights
    reference, _ = attempt_load_one_weight(weights)
    fused = _fused_copy(reference)
    f = Exporter(overrides={"format": "onnx", "imgsz": 320, "batch": 1, "dynamic": True})(fused)
    assert f == str(tmp_path / "bccd-yolo11n-dysample.onnx")
    backend = AutoBackend(f, verbose=False)
    assert backend.names == reference.names == {0: "RBC", 1: "WBC", 2: "Platelets"}
    for shape in ((320, 320), (256, 320)):
        x = _letterboxed(image, shape)
        with torch.no_grad():
            ref = reference(x)[0]
        out = backend(x)
        score = (out[:, 4:] - ref[:, 4:]).abs().max().item()
        box = ((out[:, :4] - ref[:, :4]).abs().max() / ref[:, :4].abs().max()).item()
        print(f"bccd {shape}: max |Δscore| {score:.2e}, max |Δbox|/max|box| {box:.2e}, top {ref[:, 4:].max():.2f}")
        assert score < TOL and box < TOL
        assert ref[:, 4:].max() > 0.5  # a trained model that really detects cells, so the check has teeth
