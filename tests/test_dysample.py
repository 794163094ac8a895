"""DySample: bilinear at zero offsets, fast path equals the reference formulation, argument checks, dtypes."""

import itertools

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
