"""DySample: upsampling by learning where to sample (Liu et al., ICCV 2023, "Learning to Upsample by Learning to
Sample").

Every output pixel is read from the input by bilinear sampling at a position that a 1×1 convolution predicts as
an offset from the position plain bilinear upsampling would use. With zero offsets the module *is* bilinear
upsampling (``align_corners=False``), which is why the offset convolution starts near zero.

``forward`` computes the same function as ``forward_reference`` (the paper's formulation step by step, kept for
tests and as documentation) with ``grid_sample``, every constant folded into the offset convolution's weights
(0.25 or 0.5 and the pixel→``[-1, 1]`` scale) and the grid produced in ``grid_sample``'s layout in one copy, from a
cached grid: export-safe, ``torch.compile``-able, no host–device synchronisation (docs/performance.md). On CUDA,
``DySample.use_triton = True`` switches to a fused Triton kernel (``dysample_triton.py``; opt-in until timed).

It folds ``init_pos`` into a cached grid of output-pixel source positions rather than reading the buffer: the
buffer is a fixed function of ``scale`` and ``groups`` (the reference code's values, kept for checkpoints), and
``forward_reference`` still adds it explicitly.

Parameter and buffer names (``offset``, ``scope``, ``init_pos``) follow the authors' code so that checkpoints of
forks made with the well-known tutorial load unchanged.
"""

import functools
import importlib.util

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ("DySample", "Dy_Sample")

STYLES = ("lp", "pl")


def _check_args(in_channels, scale, style, groups):
    """Raise a ValueError naming the broken rule, so a bad yaml fails with a clear message."""
    if style not in STYLES:
        raise ValueError(f"DySample style must be 'lp' or 'pl', got {style!r}")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"DySample scale must be a positive integer, got {scale!r}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"DySample groups must be a positive integer, got {groups!r}")
    if in_channels % groups:
        raise ValueError(f"DySample groups ({groups}) must divide the input channels ({in_channels})")
    if style == "pl" and in_channels % scale**2:
        raise ValueError(f"DySample style 'pl' needs channels ({in_channels}) divisible by scale² ({scale**2})")


@functools.cache
def triton_available():
    """Whether Triton is installed, for the opt-in fused path; looked up once, without importing it (slow)."""
    return importlib.util.find_spec("triton") is not None


def _pointwise(x, weight, bias):
    """A 1×1 convolution (B, Cin, H, W) → (B, O, H, W) written as a matrix product.

    Same sums as ``F.conv2d`` with a 1×1 kernel, but ``torch.compile`` leaves a matmul's layout alone, where it may
    give a convolution's input and output a channels-last layout whose symbolic strides its inductor then fails to
    order on the second input size ("cannot determine truth value of Relational"; tests/test_dysample.py).
    """
    b, _, h, w = x.shape
    return torch.baddbmm(bias.view(1, -1, 1), weight.expand(b, -1, -1), x.flatten(2)).view(b, -1, h, w)


class DySample(nn.Module):
    """Dynamic point-sampling upsampler.

    Args:
        in_channels (int): input channels; the output has the same number.
        scale (int): upsampling factor.
        style (str): ``"lp"`` predicts offsets from the low-resolution input (linear then pixel-shuffle);
            ``"pl"`` pixel-shuffles the input first and predicts offsets at high resolution (fewer parameters).
        groups (int): channel groups that get their own sampling positions.
        dyscope (bool): learn a per-point offset range ``0.5·sigmoid(scope(x))`` instead of the static 0.25.

    Shapes:
        (B, C, H, W) → (B, C, scale·H, scale·W), for any H and W.
    """

    use_triton = False  # opt-in fused CUDA kernel (dysample_triton.py): interpreter-checked, not yet timed on a GPU

    def __init__(self, in_channels, scale=2, style="lp", groups=4, dyscope=False):
        super().__init__()
        _check_args(in_channels, scale, style, groups)
        self.scale, self.style, self.groups = scale, style, groups
        conv_in = in_channels // scale**2 if style == "pl" else in_channels
        conv_out = 2 * groups if style == "pl" else 2 * groups * scale**2
        self.offset = nn.Conv2d(conv_in, conv_out, 1)
        nn.init.normal_(self.offset.weight, std=0.001)
        nn.init.zeros_(self.offset.bias)
        if dyscope:
            self.scope = nn.Conv2d(conv_in, conv_out, 1, bias=False)
            nn.init.zeros_(self.scope.weight)
        self.register_buffer("init_pos", self._init_pos())
        self._grid_cache = {}

    def _init_pos(self):
        """Sub-pixel positions (in input pixels) that make zero offsets reproduce bilinear upsampling.

        Layout: (1, 2·groups·scale², 1, 1); the first half holds x, the second y; within each half the index is
        ``g·scale² + row·scale + col`` of the output sub-pixel, matching the pixel-shuffle that follows.
        """
        s = self.scale
        h = (torch.arange(s, dtype=torch.float32) - (s - 1) / 2) / s
        x_pos = h.repeat(s)  # varies with the sub-pixel column
        y_pos = h.repeat_interleave(s)  # varies with the sub-pixel row
        return torch.cat((x_pos.repeat(self.groups), y_pos.repeat(self.groups))).view(1, -1, 1, 1)

    def _offsets(self, x):
        """Predicted sampling offsets (B, 2·groups·scale², H, W) in input pixels, init_pos included."""
        if self.style == "pl":
            x_ = F.pixel_shuffle(x, self.scale)
            off = self.offset(x_)
            if hasattr(self, "scope"):
                return F.pixel_unshuffle(off * self.scope(x_).sigmoid(), self.scale) * 0.5 + self.init_pos
            return F.pixel_unshuffle(off, self.scale) * 0.25 + self.init_pos
        if hasattr(self, "scope"):
            return self.offset(x) * self.scope(x).sigmoid() * 0.5 + self.init_pos
        return self.offset(x) * 0.25 + self.init_pos

    def _folded_weights(self, k_offset):
        """Offset conv weight (O, Cin) and bias (O,), scaled per output channel by ``k_offset``, scope conv stacked.

        Folding the scale into the (small) weights is exact for powers of two (0.25, 0.5) and saves a pass over the
        (large) offsets. With a dynamic scope the scope weights are stacked under the offset weights, so that one
        matrix product yields both; the caller splits the result in two halves.
        """
        weight = self.offset.weight.flatten(1) * k_offset.view(-1, 1)
        bias = self.offset.bias * k_offset
        if hasattr(self, "scope"):
            weight = torch.cat((weight, self.scope.weight.flatten(1)))
            bias = torch.cat((bias, torch.zeros_like(bias)))
        return weight, bias

    def _scoped(self, off):
        """Apply the dynamic scope to stacked (offset, scope) outputs along dim 1; identity for a static scope."""
        if hasattr(self, "scope"):
            off, scope = off.chunk(2, 1)
            return off * scope.sigmoid()
        return off

    def _grid(self, h, w, device, dtype):
        """Output-pixel centres in grid_sample units and the per-channel offset scale, cached per size.

        The centres come laid out like the offsets they are added to, x first: (2, 1, sH, sW) for ``"pl"`` and
        (2, 1, s, s, H, W) for ``"lp"`` (sub-pixel row, column, then input pixel), so that the addition is a plain
        broadcast in the offsets' own (contiguous) layout and the one permuting copy to grid_sample's
        (B·G, sH, sW, 2) comes after it.

        Zero offsets must reproduce bilinear upsampling, whose output pixel ``X`` reads input coordinate
        ``(X + 0.5) / s - 0.5``; in grid_sample's ``[-1, 1]`` units that is ``(2X + 1 - s·W) / (s·W)``, the centre of
        output pixel ``X`` (``init_pos`` is this grid minus the input-pixel centres). Written that way the numerator
        is an exact integer and each entry is rounded once: a rounded reciprocal ``2/(s·W)`` would move every sample
        the same way, a coherent error that shows in the offset-bias gradient (a sum over all points) as 1e-5
        relative, where independent roundings stay near 1e-7. The offset scale (one entry per offset channel, x
        channels first) is 0.25 (0.5 with a dynamic scope) times the pixel→unit factor ``2/W`` or ``2/H``, to be
        folded into the offset conv. Built with on-device ``arange``/``full`` so the forward never copies from the
        host or synchronises.

        While tracing (TorchScript and ONNX export) nothing is cached and the grid is rebuilt per call: the tracer
        hands ``h`` and ``w`` over as 0-dim tensors tied to ``x.shape``, so ``arange(s·w)``, ``2.0 / w`` and the
        ``full``s below are recorded as ops on the input's size, and a dynamic-axes export stays right at every size
        (tests/test_export.py). Keep it that way: ``torch.tensor([w, h])`` (as in ``forward_reference``), ``float(w)``
        or a cached grid would freeze the export size into the graph and silently shift samples at other sizes.
        Under ``torch.compile`` the grid is likewise built inside the graph, so the dict never enters it.
        """
        building = torch.jit.is_tracing() or torch.compiler.is_compiling()
        key = ("grid", h, w, device, dtype)
        cached = None if building else self._grid_cache.get(key)
        if cached is None:
            s = self.scale
            xs = (torch.arange(s * w, device=device, dtype=dtype) * 2 + (1 - s * w)) / (s * w)
            ys = (torch.arange(s * h, device=device, dtype=dtype) * 2 + (1 - s * h)) / (s * h)
            base = torch.stack((xs.view(1, -1).expand(s * h, s * w), ys.view(-1, 1).expand(s * h, s * w)))
            if self.style == "lp":  # (2, sH, sW) → (2, s, s, H, W): sub-pixel row and column before the pixel
                base = base.view(2, h, s, w, s).permute(0, 2, 4, 1, 3)
            base = base.unsqueeze(1).contiguous()  # the groups axis
            factor = 0.5 if hasattr(self, "scope") else 0.25
            per_axis = self.offset.out_channels // 2
            scale = [torch.full((per_axis,), factor * 2.0, device=device, dtype=dtype) / n for n in (w, h)]
            cached = (base, torch.cat(scale))
            if not building:
                self._grid_cache[key] = cached
        return cached

    def _grid_offsets(self, x):
        """Offsets in grid units, scope applied, in the conv's own layout, and the cached base grid.

        The layout is (B, 2·G·s², H, W) for ``"lp"`` and (B, 2·G, sH, sW) for ``"pl"``, where the conv runs at
        high resolution and already gives one offset per output point.
        """
        _, _, h, w = x.shape
        base, k = self._grid(h, w, x.device, x.dtype if x.dtype == torch.float64 else torch.float32)
        weight, bias = self._folded_weights(k.to(self.offset.weight.dtype))
        src = F.pixel_shuffle(x, self.scale) if self.style == "pl" else x
        return self._scoped(_pointwise(src, weight, bias)), base

    def _forward_grid(self, x):
        """``grid_sample`` path: offsets come out of the conv already in grid units, the grid in its final layout."""
        b, c, h, w = x.shape
        s, g = self.scale, self.groups
        off, base = self._grid_offsets(x)
        if self.style == "pl":
            coords = (off.view(b, 2, g, s * h, s * w) + base).permute(0, 2, 3, 4, 1)
        else:  # (B, 2·G·s², H, W) → (B, G, H, s, W, s, 2): the pixel shuffle and the (x, y) interleave in one copy
            coords = (off.view(b, 2, g, s, s, h, w) + base).permute(0, 2, 5, 3, 6, 4, 1)
        coords = coords.reshape(b * g, s * h, s * w, 2).to(x.dtype)
        out = F.grid_sample(
            x.reshape(b * g, c // g, h, w), coords, mode="bilinear", padding_mode="border", align_corners=False
        )  # autocast runs grid_sample in float32; the output keeps the input's dtype
        return out.view(b, c, s * h, s * w).to(x.dtype)

    def _forward_triton(self, x):
        """Fused Triton path (opt-in, CUDA): base grid, offsets and sampling in one kernel each way."""
        from .dysample_triton import fused_sample  # imported on first use: Triton is optional and slow to import

        return fused_sample(x, self._grid_offsets(x)[0], self.groups, self.scale, self.style)

    def forward(self, x):
        """Upsample (B, C, H, W) → (B, C, s·H, s·W); equal to ``forward_reference`` up to float rounding."""
        building = torch.jit.is_tracing() or torch.compiler.is_compiling()
        if self.use_triton and x.is_cuda and not building and triton_available():
            return self._forward_triton(x)
        return self._forward_grid(x)

    def forward_reference(self, x):
        """The paper's formulation step by step (normaliser from the shape, grid built per call); kept for tests."""
        offset = self._offsets(x)
        b, _, h, w = offset.shape
        offset = offset.view(b, 2, -1, h, w)
        cy, cx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        coords = torch.stack((cx, cy)).view(1, 2, 1, h, w).to(x.device, offset.dtype)
        normaliser = torch.tensor([w, h], dtype=offset.dtype, device=x.device).view(1, 2, 1, 1, 1)
        coords = 2 * (coords + offset) / normaliser - 1
        coords = F.pixel_shuffle(coords.reshape(b, -1, h, w), self.scale)
        coords = coords.view(b, 2, -1, self.scale * h, self.scale * w).permute(0, 2, 3, 4, 1).flatten(0, 1)
        out = F.grid_sample(
            x.reshape(b * self.groups, -1, h, w), coords.to(x.dtype), mode="bilinear", padding_mode="border",
            align_corners=False,
        )  # fmt: skip
        return out.view(b, -1, self.scale * h, self.scale * w)

    def _apply(self, fn, *args, **kwargs):
        """Drop cached grids when the module moves between devices or dtypes."""
        self._grid_cache = {}
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self):
        return f"scale={self.scale}, style={self.style!r}, groups={self.groups}, dyscope={hasattr(self, 'scope')}"


Dy_Sample = DySample  # the tutorial's name, so tutorial yamls and checkpoints work unchanged
