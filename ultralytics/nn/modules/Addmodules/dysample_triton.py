"""Fused Triton kernels for DySample on CUDA: offset + base grid + bilinear sampling in one pass, and its backward.

``DySample`` reaches this only when ``DySample.use_triton`` is set, the input is on a CUDA device, Triton imports,
and nothing is tracing or compiling (docs/performance.md). It is opt-in because it has been checked for
correctness only: in Triton's interpreter (``TRITON_INTERPRET=1`` on CPU tensors, tests/test_dysample.py), never
timed on a GPU. ``benchmarks/dysample.py --device cuda`` times it as the ``triton`` method.

What it computes is exactly ``grid_sample(x, offsets + base, "bilinear", "border", align_corners=False)`` with the
grid never written to memory: each program takes a block of output points of one (batch, group) slice, reads their
two offsets straight from the offset conv's output (any layout, given as strides), adds the output-pixel centre
``(2X + 1 - s·W) / (s·W)`` (the same expression, rounded the same way, as ``DySample._grid``), and samples every
channel of the group at those points. The backward recomputes the positions, scatters the input gradient with
atomic adds and writes the offset gradient in the offsets' own layout, so autograd carries on through the conv.
Arithmetic is float32 whatever the input dtype; the output takes the input's dtype.
"""

import torch

try:  # optional: absent on CPU-only installs and on macOS, where DySample simply never calls this module
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the environment
    triton = None

BLOCK = 128  # output points per program


if triton is not None:

    @triton.jit
    def _position(off_ptr, n, p, mask, G, SH, SW, H, W, so_b, so_a, so_g, so_r, so_c, so_i, so_j, scale):
        """Sample positions (input pixels, border-clamped) of points ``p`` of slice ``n``, and the offset index.

        Output pixel (Y, X) = (i·s + r, j·s + c) reads its offsets at ``b·so_b + axis·so_a + g·so_g + r·so_r +
        c·so_c + i·so_i + j·so_j``, which describes both the ``lp`` layout (B, 2, G, s, s, H, W) and ``pl``'s
        (B, 2, G, sH, sW). Returns also the clamp masks, which zero the gradient where the border took over.
        """
        b = n // G
        g = n % G
        oy = p // SW
        ox = p % SW
        idx = b * so_b + g * so_g + (oy % scale) * so_r + (ox % scale) * so_c + (oy // scale) * so_i
        idx += (ox // scale) * so_j
        gx = tl.load(off_ptr + idx, mask=mask, other=0.0).to(tl.float32)
        gy = tl.load(off_ptr + idx + so_a, mask=mask, other=0.0).to(tl.float32)
        gx += (2 * ox + 1 - SW).to(tl.float32) / SW  # the cached base grid of DySample._grid, rounded once
        gy += (2 * oy + 1 - SH).to(tl.float32) / SH
        ix = ((gx + 1) * W - 1) / 2  # grid_sample's unnormalisation for align_corners=False
        iy = ((gy + 1) * H - 1) / 2
        in_x = (ix > 0) & (ix < W - 1)
        in_y = (iy > 0) & (iy < H - 1)
        ix = tl.minimum(tl.maximum(ix, 0.0), W - 1.0)  # sizes may arrive as constexpr 1: keep them plain numbers
        iy = tl.minimum(tl.maximum(iy, 0.0), H - 1.0)
        return ix, iy, in_x, in_y, idx

    @triton.jit
    def _corners(ix, iy, mask, H, W):
        """Top-left corner, fractional weights and the masks of the right, lower and diagonal neighbours."""
        x0f = tl.floor(ix)
        y0f = tl.floor(iy)
        x0 = x0f.to(tl.int32)
        y0 = y0f.to(tl.int32)
        m01 = mask & (x0 + 1 < W)
        m10 = mask & (y0 + 1 < H)
        return x0, y0, ix - x0f, iy - y0f, m01, m10, m01 & (y0 + 1 < H)

    @triton.jit
    def _forward_kernel(x_ptr, off_ptr, out_ptr, G, CG, H, W, SH, SW, so_b, so_a, so_g, so_r, so_c, so_i, so_j,
                        scale, BLOCK_P: tl.constexpr):  # fmt: skip
        n = tl.program_id(0)
        p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
        mask = p < SH * SW
        ix, iy, _, _, _ = _position(off_ptr, n, p, mask, G, SH, SW, H, W, so_b, so_a, so_g, so_r, so_c, so_i, so_j,
                                    scale)  # fmt: skip
        x0, y0, wx, wy, m01, m10, m11 = _corners(ix, iy, mask, H, W)
        base = n.to(tl.int64) * CG * H * W
        out_base = n.to(tl.int64) * CG * SH * SW
        for c in range(CG):
            src = x_ptr + base + c * H * W + y0 * W + x0
            v00 = tl.load(src, mask=mask, other=0.0).to(tl.float32)
            v01 = tl.load(src + 1, mask=m01, other=0.0).to(tl.float32)
            v10 = tl.load(src + W, mask=m10, other=0.0).to(tl.float32)
            v11 = tl.load(src + W + 1, mask=m11, other=0.0).to(tl.float32)
            top = v00 * (1 - wx) + v01 * wx
            bottom = v10 * (1 - wx) + v11 * wx
            val = top * (1 - wy) + bottom * wy
            tl.store(out_ptr + out_base + c * SH * SW + p, val.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _backward_kernel(x_ptr, off_ptr, gout_ptr, gx_ptr, goff_ptr, G, CG, H, W, SH, SW, so_b, so_a, so_g, so_r,
                         so_c, so_i, so_j, scale, BLOCK_P: tl.constexpr):  # fmt: skip
        n = tl.program_id(0)
        p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
        mask = p < SH * SW
        ix, iy, in_x, in_y, idx = _position(off_ptr, n, p, mask, G, SH, SW, H, W, so_b, so_a, so_g, so_r, so_c,
                                            so_i, so_j, scale)  # fmt: skip
        x0, y0, wx, wy, m01, m10, m11 = _corners(ix, iy, mask, H, W)
        base = n.to(tl.int64) * CG * H * W
        out_base = n.to(tl.int64) * CG * SH * SW
        d_ix = tl.zeros((BLOCK_P,), tl.float32)
        d_iy = tl.zeros((BLOCK_P,), tl.float32)
        for c in range(CG):
            go = tl.load(gout_ptr + out_base + c * SH * SW + p, mask=mask, other=0.0).to(tl.float32)
            offset = base + c * H * W + y0 * W + x0
            v00 = tl.load(x_ptr + offset, mask=mask, other=0.0).to(tl.float32)
            v01 = tl.load(x_ptr + offset + 1, mask=m01, other=0.0).to(tl.float32)
            v10 = tl.load(x_ptr + offset + W, mask=m10, other=0.0).to(tl.float32)
            v11 = tl.load(x_ptr + offset + W + 1, mask=m11, other=0.0).to(tl.float32)
            d_ix += go * ((v01 - v00) * (1 - wy) + (v11 - v10) * wy)
            d_iy += go * ((v10 - v00) * (1 - wx) + (v11 - v01) * wx)
            tl.atomic_add(gx_ptr + offset, go * (1 - wx) * (1 - wy), mask=mask)
            tl.atomic_add(gx_ptr + offset + 1, go * wx * (1 - wy), mask=m01)
            tl.atomic_add(gx_ptr + offset + W, go * (1 - wx) * wy, mask=m10)
            tl.atomic_add(gx_ptr + offset + W + 1, go * wx * wy, mask=m11)
        # d ix / d grid = W / 2 inside the border, 0 where the clamp took over; the base grid is a constant
        d_gx = tl.where(in_x, d_ix * (W * 0.5), 0.0)
        d_gy = tl.where(in_y, d_iy * (H * 0.5), 0.0)
        tl.store(goff_ptr + idx, d_gx, mask=mask)
        tl.store(goff_ptr + idx + so_a, d_gy, mask=mask)


def _launch_args(x, off, groups, scale, style):
    """Shapes and the offset strides (b, axis, g, sub-row, sub-col, row, col) of either style's layout."""
    b, c, h, w = x.shape
    sh, sw = scale * h, scale * w
    o = off.stride()
    if style == "lp":  # (B, 2·G·s·s, H, W): channel (axis, g, r, c)
        step = o[1]
        strides = (o[0], groups * scale * scale * step, scale * scale * step, scale * step, step, o[2], o[3])
    else:  # (B, 2·G, sH, sW): channel (axis, g), then the output pixel itself
        strides = (o[0], groups * o[1], o[1], o[2], o[3], scale * o[2], scale * o[3])
    return (groups, c // groups, h, w, sh, sw, *strides, scale)


class _FusedSample(torch.autograd.Function):
    """Autograd wrapper: out = sample(x, off); gradients for x and the offsets (which need no base grid term)."""

    @staticmethod
    def forward(ctx, x, off, groups, scale, style):
        x, off = x.contiguous(), off.contiguous()
        args = _launch_args(x, off, groups, scale, style)
        b, c, h, w = x.shape
        out = x.new_empty(b, c, scale * h, scale * w)
        grid = (b * groups, triton.cdiv(scale * h * scale * w, BLOCK))
        _forward_kernel[grid](x, off, out, *args, BLOCK_P=BLOCK)
        ctx.save_for_backward(x, off)
        ctx.launch = grid, args  # the backward covers the same points with the same sizes and strides
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, off = ctx.saved_tensors
        grid, args = ctx.launch
        gx = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
        goff = torch.empty(off.shape, dtype=torch.float32, device=off.device)
        _backward_kernel[grid](x, off, grad_out.contiguous(), gx, goff, *args, BLOCK_P=BLOCK)
        return gx.to(x.dtype), goff.to(off.dtype), None, None, None


def fused_sample(x, off, groups, scale, style):
    """Bilinear-sample ``x`` (B, C, H, W) at ``off`` (in grid units, the offset conv's layout) + the base grid."""
    return _FusedSample.apply(x, off, groups, scale, style)
