"""Run by tests/test_dysample.py in a subprocess with TRITON_INTERPRET=1: the fused kernel against the reference.

Triton decides between compiling and interpreting when a kernel is defined, so the variable has to be set before
``dysample_triton`` is imported: hence a separate process. Exits non-zero (an AssertionError) on any mismatch.
"""

import os
import sys
from pathlib import Path

import torch

from ultralytics.nn.modules.Addmodules.dysample_triton import fused_sample

sys.path.insert(0, str(Path(__file__).parent))
from test_dysample import _moved  # noqa: E402  (the tests' seeded module with offsets large enough to clamp)

assert os.environ.get("TRITON_INTERPRET") == "1", "run me with TRITON_INTERPRET=1"


def check(style, dyscope, groups, scale):
    channels = 8 * scale * scale
    m = _moved(style, dyscope, groups, scale, channels)
    x = torch.randn(2, channels, 5, 7, requires_grad=True)
    out, ref = m._forward_triton(x), m.forward_reference(x)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert (out - ref).abs().max() <= 1e-5, (style, dyscope, groups, scale, (out - ref).abs().max())
    g = torch.randn_like(ref)
    inputs = [x, *m.parameters()]
    for a, b in zip(torch.autograd.grad(out, inputs, g), torch.autograd.grad(ref, inputs, g)):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), (style, dyscope, groups, scale)
    # half precision: float32 arithmetic inside, the output in the input's dtype
    x16 = x.detach().half()
    out16 = fused_sample(x16, m._grid_offsets(x16.float())[0].half(), groups, scale, style)
    assert out16.dtype == torch.float16
    assert (out16.float() - ref.detach()).abs().max() <= 2e-2


for combo in (("lp", False, 2, 2), ("pl", True, 2, 2), ("lp", True, 1, 3), ("pl", False, 4, 2)):
    check(*combo)
print("triton kernel matches the reference")
