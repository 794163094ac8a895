"""CARAFE and the upsampler comparison yamls: shapes, kernel normalisation, exact hand-checkable cases, parse_model."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ultralytics.nn.modules.Addmodules import CARAFE
from ultralytics.nn.tasks import MODULES, DetectionModel

YOLO11N_PARAMS = 2_624_080


def carafe_params(c, scale=2, k_up=5, k_enc=3, c_mid=64):
    """Compressor c→c_mid (1×1, bias) + encoder c_mid→scale²·k_up² (k_enc×k_enc, bias)."""
    return c * c_mid + c_mid + c_mid * k_enc**2 * scale**2 * k_up**2 + scale**2 * k_up**2


def carafe_flops(c, h, w, scale=2, k_up=5, k_enc=3, c_mid=64):
    """FLOPs the model counter sees: both convs and the reassembly matmul, 2 per multiply-add, no biases."""
    convs = c * c_mid * h * w + c_mid * k_enc**2 * scale**2 * k_up**2 * h * w
    return 2 * (convs + k_up**2 * c * scale**2 * h * w)


def zero_encoder(m, bias=None):
    """Make the predicted kernels input-independent: zero encoder weights, and the given (or zero) bias."""
    with torch.no_grad():
        m.content_encoder.weight.zero_()
        m.content_encoder.bias.copy_(torch.zeros_like(m.content_encoder.bias) if bias is None else bias)
    return m


def test_registered_and_exported():
    assert MODULES["CARAFE"] is CARAFE


@pytest.mark.parametrize("scale", [2, 3])
def test_shape_on_odd_non_square_input(scale):
    x = torch.randn(2, 24, 7, 5)
    assert CARAFE(24, scale)(x).shape == (2, 24, 7 * scale, 5 * scale)


def test_kernels_are_normalised_per_output_pixel():
    m = CARAFE(16, 2, k_up=3)
    nn.init.normal_(m.content_encoder.weight, std=0.5)  # far from uniform, so the softmax matters
    k = m.kernels(torch.randn(2, 16, 5, 6))
    assert k.shape == (2, 9, 10, 12)
    assert (k >= 0).all()
    torch.testing.assert_close(k.sum(1), torch.ones(2, 10, 12))


def test_uniform_kernels_give_nearest_upsampled_box_filter():
    """Zero encoder → every kernel is 1/k² → output = nearest-upsample of the zero-padded k×k mean of the input.

    Output pixel (s·h+i, s·w+j) averages the k×k window around its source pixel (h, w), the same window for all
    s² sub-pixels, with zeros outside (mmcv skips them; the divisor stays k²): box filter first, then upsample.
    """
    m = zero_encoder(CARAFE(8, 2, k_up=5))
    x = torch.randn(1, 8, 6, 7)
    box = F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=True)
    expected = F.interpolate(box, scale_factor=2, mode="nearest")
    torch.testing.assert_close(m(x), expected)


def test_kernel_layout_matches_mmcv():
    """A one-hot kernel picks one neighbour: sub-pixel (i, j) reads input (h + i, w + j), zero past the border.

    Encoder channel ``n·s² + i·s + j`` is kernel weight n (row-major over the k×k window) of sub-pixel (i, j),
    as mmcv's pixel-shuffle layout has it; a bias of 40 makes the softmax one-hot to within 1e-16.
    """
    s, k, r = 2, 5, 2
    bias = torch.zeros(s * s * k * k)
    for i in range(s):
        for j in range(s):
            n = (r + i) * k + (r + j)
            bias[n * s * s + i * s + j] = 40.0
    m = zero_encoder(CARAFE(3, s, k_up=k), bias)
    x = torch.randn(1, 3, 4, 5)
    shifted = F.pad(x, (0, 1, 0, 1))
    expected = torch.empty(1, 3, 8, 10)
    for i in range(s):
        for j in range(s):
            expected[..., i::s, j::s] = shifted[..., i : i + 4, j : j + 5]
    torch.testing.assert_close(m(x), expected)


def test_fast_path_equals_reference():
    m = CARAFE(12, 2, k_up=3, c_mid=16)
    nn.init.normal_(m.content_encoder.weight, std=0.3)
    x = torch.randn(2, 12, 5, 4)
    torch.testing.assert_close(m(x), m.forward_reference(x))


def test_gradients_reach_input_and_both_convs():
    m = CARAFE(8, 2, c_mid=8)
    x = torch.randn(1, 8, 5, 6, requires_grad=True)
    (m(x) * torch.randn(1, 8, 10, 12)).sum().backward()
    for g in (x.grad, m.channel_compressor.weight.grad, m.content_encoder.weight.grad, m.content_encoder.bias.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs, rule",
    [({"scale": 0}, "scale must be a positive integer"), ({"k_up": 4}, "k_up must be odd"),
     ({"k_enc": 2}, "k_enc must be odd"), ({"c_mid": 2.0}, "c_mid must be a positive integer")],
)  # fmt: skip
def test_bad_arguments_are_named(kwargs, rule):
    with pytest.raises(ValueError, match=rule):
        CARAFE(16, **kwargs)


def test_mmcv_initialisation_and_names():
    m = CARAFE(32)
    assert set(m.state_dict()) == {
        f"{a}.{b}" for a in ("channel_compressor", "content_encoder") for b in ("weight", "bias")
    }
    assert m.content_encoder.weight.std() < 0.002 and not m.content_encoder.bias.any()
    assert not m.channel_compressor.bias.any()


def test_bilinear_yaml_is_stock_yolo11_with_bilinear_upsampling():
    model = DetectionModel("yolo11n-bilinear.yaml", verbose=False)
    ups = [m for m in model.model if isinstance(m, nn.Upsample)]
    assert [u.mode for u in ups] == ["bilinear", "bilinear"] and [u.i for u in ups] == [11, 14]
    assert sum(p.numel() for p in model.parameters()) == YOLO11N_PARAMS


def test_carafe_yaml_parameters_and_channels():
    """parse_model hands CARAFE the channels of its 'from' layer (layers 10 and 13: 256 and 128 at scale n)."""
    model = DetectionModel("yolo11n-carafe.yaml", verbose=False)
    ups = [m for m in model.model if isinstance(m, CARAFE)]
    assert [u.i for u in ups] == [11, 14]
    assert [u.channel_compressor.in_channels for u in ups] == [256, 128]
    assert sum(p.numel() for p in model.parameters()) == YOLO11N_PARAMS + carafe_params(256) + carafe_params(128)
    assert YOLO11N_PARAMS + carafe_params(256) + carafe_params(128) == 2_764_184  # +140,104, as docs/upsamplers.md
    assert model.eval()(torch.zeros(1, 3, 64, 96))[0].shape[:2] == (1, 84)


@pytest.mark.parametrize("c, h, w", [(256, 20, 20), (128, 40, 40)])
def test_carafe_flops_are_seen_by_the_model_counter(c, h, w):
    """model.info()'s counter sees both convs and the reassembly matmul; the window gather and softmax are free."""
    from torch.utils.flop_counter import FlopCounterMode

    m = CARAFE(c).to("meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(torch.empty(1, c, h, w, device="meta"))
    assert counter.get_total_flops() == carafe_flops(c, h, w)
