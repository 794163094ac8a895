"""DySample: bilinear at zero offsets, fast path equals the reference formulation, argument checks, dtypes."""

import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ultralytics.nn.modules.Addmodules import Dy_Sample, DySample


def _zero_offsets(m):
    torch.nn.init.zeros_(m.offset.weight)
    torch.nn.init.zeros_(m.offset.bias)
    return m


@pytest.mark.parametrize("style,scale,groups,dyscope", [("lp", 2, 4, False), ("pl", 2, 2, True), ("lp", 3, 1, True)])
def test_zero_offsets_equal_bilinear(style, scale, groups, dyscope):
    m = _zero_offsets(DySample(36, scale, style, groups, dyscope))
    x = torch.randn(2, 36, 7, 5)
    expected = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    assert torch.allclose(m(x), expected, atol=1e-5)


def test_initial_module_is_close_to_bilinear():
    m = DySample(64)
    x = torch.randn(1, 64, 9, 11)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert (m(x) - expected).abs().max() < 0.05  # offsets start at std 0.001 * 0.25 pixel


def test_init_pos_layout():
    m = DySample(8, scale=2, groups=1)
    assert m.init_pos.flatten().tolist() == [-0.25, 0.25, -0.25, 0.25, -0.25, -0.25, 0.25, 0.25]
    assert DySample(8, scale=2, groups=4).init_pos.shape == (1, 32, 1, 1)


def test_names_match_reference_checkpoints():
    assert Dy_Sample is DySample
    keys = set(DySample(32, dyscope=True).state_dict())
    assert keys == {"offset.weight", "offset.bias", "scope.weight", "init_pos"}
    assert set(DySample(32).state_dict()) == {"offset.weight", "offset.bias", "init_pos"}


def test_init():
    m = DySample(256, dyscope=True)
    assert m.offset.weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert torch.all(m.offset.bias == 0) and torch.all(m.scope.weight == 0)


COMBOS = list(itertools.product(("lp", "pl"), (False, True), (1, 2, 4), (2, 3)))


@pytest.mark.parametrize("style,dyscope,groups,scale", COMBOS)
def test_every_combination_runs_and_matches_reference(style, dyscope, groups, scale):
    torch.manual_seed(0)
    channels = 72  # divisible by groups, scale² and groups·scale² for every combination
    m = DySample(channels, scale, style, groups, dyscope)
    with torch.no_grad():  # larger offsets than the init so that sampling really moves
        m.offset.weight.normal_(std=0.3)
        if dyscope:
            m.scope.weight.normal_(std=0.3)
    x = torch.randn(2, channels, 5, 7, requires_grad=True)
    out = m(x)
    assert out.shape == (2, channels, 5 * scale, 7 * scale)
    ref = m.forward_reference(x)
    assert torch.allclose(out, ref, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), [x, m.offset.weight])
    ref_grads = torch.autograd.grad(ref.square().sum(), [x, m.offset.weight])
    for g, r in zip(grads, ref_grads):  # relative to the largest gradient: sums of hundreds of terms differ in order
        assert (g - r).abs().max() <= 1e-5 * r.abs().max()


def test_gradients_reach_offset_and_scope():
    m = DySample(16, dyscope=True)
    m(torch.randn(1, 16, 6, 5)).square().sum().backward()
    assert m.offset.weight.grad.abs().sum() > 0 and m.offset.bias.grad.abs().sum() > 0
    assert m.scope.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(in_channels=30, groups=4), "groups .4. must divide the input channels .30."),
        (dict(in_channels=18, style="pl", groups=1), "divisible by scale²"),
        (dict(in_channels=16, style="xy"), "style must be 'lp' or 'pl'"),
        (dict(in_channels=16, scale=0), "scale must be a positive integer"),
        (dict(in_channels=16, scale=1.5), "scale must be a positive integer"),
        (dict(in_channels=16, groups=0), "groups must be a positive integer"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DySample(**kwargs)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision(dtype):
    m = DySample(16).to(dtype)
    x = torch.randn(1, 16, 5, 6, dtype=dtype)
    out = m(x)
    assert out.dtype == dtype
    ref = m.float()(x.float())
    assert (out.float() - ref).abs().max() < 0.1


@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16])
def test_output_dtype_follows_input_under_autocast(in_dtype):
    m = DySample(16, dyscope=True)
    x = torch.randn(1, 16, 5, 6, dtype=in_dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x)
    assert out.dtype == in_dtype


def test_grid_cache_follows_device_and_dtype():
    m = DySample(8, groups=2)
    x = torch.randn(1, 8, 4, 4)
    m(x)
    assert len(m._grid_cache) == 1
    m.double()
    assert len(m._grid_cache) == 0
    assert m(x.double()).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_has_no_host_sync():
    m = DySample(64).cuda()
    x = torch.randn(2, 64, 20, 20, device="cuda")
    m(x)  # first call builds the cached grid
    torch.cuda.set_sync_debug_mode("error")
    try:
        m(x).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# --------------------------------------------------------------------------------------------- fast paths vs reference
def _moved(style, dyscope, groups, scale, channels=72, dtype=torch.float32):
    """A DySample whose offsets (and scope) are large enough that sampling really moves, seeded."""
    torch.manual_seed(0)
    m = DySample(channels, scale, style, groups, dyscope).to(dtype)
    with torch.no_grad():
        m.offset.weight.normal_(std=0.3)
        m.offset.bias.normal_(std=0.3)
        if dyscope:
            m.scope.weight.normal_(std=0.3)
    return m


def _grads(out, m, x):
    """Gradients of a fixed scalar loss w.r.t. the input and every parameter (offset and scope weights, bias)."""
    return torch.autograd.grad(out.square().sum(), [x, *m.parameters()])


def _assert_matches_reference(m, x, out):
    ref = m.forward_reference(x)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert (out - ref).abs().max() <= 1e-5
    for g, r in zip(_grads(out, m, x), _grads(ref, m, x)):  # relative to the largest gradient of each tensor
        assert (g - r).abs().max() <= 1e-5 * r.abs().max()


@pytest.mark.parametrize("style,dyscope,groups,scale", COMBOS)
def test_grid_path_matches_reference(style, dyscope, groups, scale):
    """The grid_sample path (CUDA, export, compile, half precision) with its folded constants."""
    m = _moved(style, dyscope, groups, scale)
    x = torch.randn(2, 72, 5, 7, requires_grad=True)
    _assert_matches_reference(m, x, m._forward_grid(x))


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_forward_matches_reference_in_both_layouts(layout):
    m = _moved("lp", False, 4, 2)
    x = torch.randn(2, 72, 5, 7)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    out = m(x)
    _assert_matches_reference(m, x, out)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_float64_paths_match_reference_closely(layout):
    m = _moved("pl", True, 2, 2, dtype=torch.float64)
    x = torch.randn(1, 72, 6, 9, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(m(x), m.forward_reference(x), atol=1e-12)


def test_edges_and_single_pixel_inputs():
    """Positions clamped at every border (large offsets) and 1-pixel-wide inputs, where both taps coincide."""
    m = _moved("lp", True, 2, 2, channels=8)
    with torch.no_grad():
        m.offset.bias.fill_(40.0)  # every point pushed far outside the image
    for shape in ((1, 8, 1, 1), (2, 8, 1, 5), (2, 8, 4, 1), (1, 8, 3, 3)):
        x = torch.randn(shape, requires_grad=True)
        out, ref = m(x), m.forward_reference(x)
        assert (out - ref).abs().max() <= 1e-5
        # Clamped points sit exactly on grid_sample's border, where the two formulations' last-bit differences in
        # the coordinates decide which side of the clamp a point falls: gradients agree to 1e-4 relative there.
        for g, r in zip(_grads(out, m, x), _grads(ref, m, x)):
            assert (g - r).abs().max() <= 1e-4 * r.abs().max()


def test_without_input_gradient():
    """A frozen input (no grad): only the offset parameters get gradients, and they match the reference."""
    m = _moved("lp", False, 4, 2)
    x = torch.randn(2, 72, 5, 7).contiguous(memory_format=torch.channels_last)
    fast = torch.autograd.grad(m(x).square().sum(), list(m.parameters()))
    ref = torch.autograd.grad(m.forward_reference(x).square().sum(), list(m.parameters()))
    for g, r in zip(fast, ref):
        assert (g - r).abs().max() <= 1e-5 * r.abs().max()


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_no_grad_inference(layout, mode):
    m = _moved("lp", True, 4, 2)
    x = torch.randn(2, 72, 5, 7)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    with mode():
        out = m(x)
    assert out.grad_fn is None and not out.requires_grad
    with torch.no_grad():
        assert (out - m.forward_reference(x)).abs().max() <= 1e-5


def test_autocast_keeps_float32_output():
    m = _moved("lp", True, 4, 2)
    x = torch.randn(1, 72, 5, 7).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = m(x), m.forward_reference(x)
    assert out.dtype == torch.float32
    assert (out - ref.float()).abs().max() < 0.1  # both predict offsets in bfloat16 (3 significant digits)


def test_non_contiguous_input():
    m = _moved("pl", False, 2, 2)
    x = torch.randn(2, 72, 10, 7)[:, :, ::2]  # strided, neither NCHW- nor channels-last-contiguous
    assert (m(x) - m.forward_reference(x)).abs().max() <= 1e-5


# ---------------------------------------------------------------------------------------------------- grid cache
def test_grid_cache_is_keyed_by_size_and_dtype():
    m = _moved("lp", False, 2, 2, channels=8)
    x = torch.randn(1, 8, 4, 6)
    m(x)
    m(x)  # same size: reused
    assert len(m._grid_cache) == 1
    for other in (torch.randn(1, 8, 6, 4), torch.randn(2, 8, 5, 5)):  # transposed size, another size and batch
        assert (m(other) - m.forward_reference(other)).abs().max() <= 1e-5
    assert len(m._grid_cache) == 3
    m(x.double().float())  # equal size and dtype again: no new entry
    m(x.contiguous(memory_format=torch.channels_last))  # layout does not change the grid
    assert len(m._grid_cache) == 3
    assert {k[1:3] for k in m._grid_cache} == {(4, 6), (6, 4), (5, 5)}
    m64 = _moved("lp", False, 2, 2, channels=8, dtype=torch.float64)
    m64.load_state_dict(m.state_dict())
    m64._grid_cache = dict(m._grid_cache)  # a stale float32 grid must not be picked for a float64 input
    out = m64(x.double())
    assert out.dtype == torch.float64 and any(k[-1] == torch.float64 for k in m64._grid_cache)
    assert (out - m64.forward_reference(x.double())).abs().max() <= 1e-10


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is deprecated upstream, still what export uses
def test_tracing_does_not_touch_the_cache():
    m = _moved("lp", False, 2, 2, channels=8).eval()
    with torch.no_grad():
        torch.jit.trace(m, torch.randn(1, 8, 4, 4), check_trace=False)
    assert m._grid_cache == {}


# ------------------------------------------------------------------------------------------------- torch.compile
def test_torch_compile_graph_capture():
    """Dynamo + AOTAutograd capture the whole forward and backward in one graph (no break, cache bypassed)."""
    torch._dynamo.reset()
    m = _moved("lp", True, 2, 2, channels=16)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    for shape in ((1, 16, 5, 7), (2, 16, 6, 6)):
        x = torch.randn(shape, requires_grad=True)
        out = compiled(x)
        _assert_matches_reference(m, x, out)
    assert m._grid_cache == {}


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="Inductor needs a C++ compiler on CPU")
@pytest.mark.parametrize("style,dyscope", [("lp", False), ("pl", True)])
def test_torch_compile_inductor_new_sizes(style, dyscope):
    """Inductor code generation, forward and backward, across input sizes (automatic dynamic shapes).

    The capture alone is not enough: with ``F.conv2d`` for the offsets, Inductor gave the convolution a channels-last
    layout and then failed on the second size with "cannot determine truth value of Relational".
    """
    torch._dynamo.reset()
    m = _moved(style, dyscope, 2, 2, channels=16)
    compiled = torch.compile(m, backend="inductor")
    for shape in ((1, 16, 4, 6), (2, 16, 6, 4), (1, 16, 5, 5)):
        x = torch.randn(shape, requires_grad=True)
        _assert_matches_reference(m, x, compiled(x))


# ------------------------------------------------------------------------------------------------- Triton (opt-in)
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_triton_kernel_matches_reference_in_interpreter():
    """The fused kernel, run by Triton's interpreter on CPU tensors: outputs and gradients equal the reference.

    Covers both layouts, dynamic scope, one to four groups, scale 3, the border clamp, and an fp16 input. This is a
    correctness check only; the kernel has not been timed on a GPU, hence ``DySample.use_triton`` stays off.
    """
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    script = Path(__file__).with_name("triton_check.py")
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "matches the reference" in r.stdout


def test_use_triton_on_cpu_takes_the_grid_path(monkeypatch):
    """The opt-in flag changes nothing off CUDA: same output as the grid path, and Triton is never imported."""
    m = _moved("lp", False, 2, 2, channels=16)
    monkeypatch.setattr(DySample, "use_triton", True)
    monkeypatch.delitem(sys.modules, "ultralytics.nn.modules.Addmodules.dysample_triton", raising=False)
    x = torch.randn(1, 16, 4, 6)
    assert torch.equal(m(x), m._forward_grid(x))
    assert "ultralytics.nn.modules.Addmodules.dysample_triton" not in sys.modules
