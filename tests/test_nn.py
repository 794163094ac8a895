"""Model core: yaml parsing, exact upstream parameter counts, FLOPs, fusion and output parity with upstream."""

import numpy as np
import pytest
import torch

from tests.conftest import require_shared
from ultralytics.nn.modules import C3k2, Detect
from ultralytics.nn.modules.Addmodules import DySample
from ultralytics.nn.tasks import DetectionModel, guess_model_scale, parse_model, yaml_model_load

# Upstream Ultralytics 8.4 at nc=80.
PARAMS = {
    "yolo11n": 2_624_080, "yolo11s": 9_458_752, "yolo11m": 20_114_688, "yolo11l": 25_372_160,
    "yolo11x": 56_966_176, "yolo11n-dysample": 2_636_432, "yolo11s-dysample": 9_483_392,
    "yolo11m-dysample": 20_147_520, "yolo11l-dysample": 25_404_992, "yolo11x-dysample": 57_015_392,
}  # fmt: skip
GFLOPS = {"yolo11n": 6.7, "yolo11s": 21.8, "yolo11m": 68.6, "yolo11l": 87.9, "yolo11x": 196.3}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts_match_upstream(name):
    model = DetectionModel(f"{name}.yaml", verbose=False)
    layers, params, grads, gflops = model.info(verbose=False)
    assert params == PARAMS[name]
    assert grads == params - 16  # the DFL integral conv is frozen
    if name in GFLOPS:
        assert gflops == pytest.approx(GFLOPS[name], rel=0.03)


def test_scale_from_file_name():
    d = yaml_model_load("yolo11s-dysample.yaml")
    assert d["scale"] == "s" and d["yaml_file"] == "yolo11s-dysample.yaml"
    assert sum(layer[2] == "Dy_Sample" for layer in d["head"]) == 2
    assert guess_model_scale("path/to/yolo11x.yaml") == "x"
    assert guess_model_scale("custom.yaml") == ""


def test_missing_yaml_is_named():
    with pytest.raises(FileNotFoundError, match="yolo11q-nothing.yaml"):
        yaml_model_load("yolo11q-nothing.yaml")


def test_unknown_module_names_layer_and_module():
    d = yaml_model_load("yolo11n.yaml")
    d["head"][0] = [-1, 1, "FancyUpsample", [2]]
    with pytest.raises(ValueError, match=r"layer 11: unknown module 'FancyUpsample'"):
        parse_model(d, ch=3, verbose=False)


def test_dysample_branch_takes_channels_from_previous_layer():
    model = DetectionModel("yolo11n-dysample.yaml", verbose=False)
    ups = [m for m in model.model if isinstance(m, DySample)]
    assert [m.offset.in_channels for m in ups] == [256, 128]
    assert [m.offset.out_channels for m in ups] == [32, 32]  # 2 * groups 4 * scale² 4
    assert [m.i for m in ups] == [11, 14]


def test_c3k_forced_at_scale_m():
    model = DetectionModel("yolo11m.yaml", verbose=False)
    c3k2 = [m for m in model.model if isinstance(m, C3k2)]
    assert all(type(inner).__name__ == "C3k" for m in c3k2 for inner in m.m)


def test_nc_override_and_output_shapes():
    model = DetectionModel("yolo11n-dysample.yaml", nc=3, verbose=False)
    head = model.model[-1]
    assert isinstance(head, Detect) and head.nc == 3 and head.stride.tolist() == [8.0, 16.0, 32.0]
    x = torch.rand(2, 3, 96, 160)
    maps = model(x)
    assert [tuple(m.shape) for m in maps] == [(2, 67, 12, 20), (2, 67, 6, 10), (2, 67, 3, 5)]
    model.eval()
    y, maps = model(x)
    assert y.shape == (2, 7, 12 * 20 + 6 * 10 + 3 * 5)
    assert 0 <= y[:, 4:].min() and y[:, 4:].max() <= 1  # sigmoid scores
    assert y[:, 0].max() <= 160 + 32 and y[:, 1].max() <= 96 + 32  # xy centres are in input pixels


def test_head_bias_init():
    head = DetectionModel("yolo11n.yaml", verbose=False).model[-1]
    assert torch.all(head.cv2[0][-1].bias == 1.0)
    expected = np.log(5 / 80 / (640 / 8) ** 2)
    assert head.cv3[0][-1].bias[0].item() == pytest.approx(expected, rel=1e-6)


def test_batchnorm_settings_and_probe_leaves_stats_untouched():
    model = DetectionModel("yolo11n.yaml", verbose=False)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.eps == 1e-3 and m.momentum == 0.03 for m in bns)
    assert all(int(m.num_batches_tracked) == 0 and torch.all(m.running_var == 1) for m in bns)


@pytest.mark.parametrize("name", ["yolo11n", "yolo11n-dysample"])
def test_fuse_keeps_outputs(name):
    torch.manual_seed(0)
    model = DetectionModel(f"{name}.yaml", verbose=False).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics so that folding is really exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        before = model(x)[0]
        model.fuse(verbose=False)
        after = model(x)[0]
    assert model.is_fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    # Scores are compared absolutely; boxes are in pixels (hundreds here), so float32 rounding alone moves them by
    # ~1e-7 of their magnitude: compare those relative to the largest coordinate.
    assert (before[:, 4:] - after[:, 4:]).abs().max() < 1e-5
    assert (before[:, :4] - after[:, :4]).abs().max() < 1e-5 * before[:, :4].abs().max()


def test_summary_and_layer_table_are_logged(ulogs):
    DetectionModel("yolo11n-dysample.yaml", verbose=True)
    text = "\n".join(ulogs)
    assert "from  n    params  module" in text
    assert "ultralytics.nn.modules.Addmodules.DySample.DySample" in text
    assert "YOLO11n-dysample summary: 181 layers, 2,636,432 parameters, 2,636,416 gradients" in text


def test_state_dict_keys_follow_upstream_names():
    keys = DetectionModel("yolo11n-dysample.yaml", verbose=False).state_dict().keys()
    expected = [
        "model.0.conv.weight", "model.0.bn.running_var", "model.10.m.0.attn.qkv.conv.weight", "model.11.offset.weight",
        "model.11.init_pos", "model.23.dfl.conv.weight", "model.23.cv3.2.0.0.conv.weight",
    ]  # fmt: skip
    for key in expected:
        assert key in keys


def test_activation_key_in_yaml():
    d = yaml_model_load("yolo11n.yaml")
    d["activation"] = "nn.ReLU()"
    try:
        model = DetectionModel(d, verbose=False)
        assert isinstance(model.model[0].act, torch.nn.ReLU)
    finally:
        from ultralytics.nn.modules import Conv

        Conv.default_act = torch.nn.SiLU()


@pytest.mark.parametrize("name", ["yolo11n", "yolo11n-dysample"])
def test_outputs_match_upstream(name):
    """Load upstream's weights (plain arrays) and compare eval outputs with upstream's for the same input."""
    fixtures = require_shared("fixtures", "upstream")
    stem = f"{name}-coco128-1epoch"
    state = dict(np.load(fixtures / f"{stem}.state.npz"))
    expected = np.load(fixtures / "expected_outputs.npz")
    model = DetectionModel(f"{name}.yaml", verbose=False).eval()
    own = model.state_dict()
    assert set(state) == set(own)
    assert all(state[k].shape == tuple(own[k].shape) for k in state)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    with torch.no_grad():
        y = model(torch.from_numpy(expected["input"]))[0].numpy()
    assert y.shape == expected[name].shape == (1, 84, 2100)
    assert np.abs(y - expected[name]).max() < 1e-3
