"""DySample latency and peak memory: fast path, reference path, nearest and bilinear upsampling, at YOLO11's shapes.

Example:
    python benchmarks/dysample.py                                  # CPU, batch 2, every shape, about 3 min
    python benchmarks/dysample.py --device cuda --batch 16 --json dysample-cuda.json
    python benchmarks/dysample.py --shapes n-p4 n-p3 --repeats 20

Methods (all 2× upsampling of the same input):
    fast            ``DySample.forward`` on an NCHW input (the default layout)
    reference       ``DySample.forward_reference`` on the NCHW input (the paper's formulation, step by step)
    nearest         ``nn.Upsample(scale_factor=2, mode="nearest")``, what stock YOLO11 uses
    bilinear        ``F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)``
    triton          (CUDA with Triton only) ``DySample._forward_triton``, the opt-in fused kernel

"fwd" is inference (``torch.no_grad``); "fwd+bwd" is a forward plus ``autograd.grad`` of the output (with a fixed
random upstream gradient) with respect to the input and the module's parameters. Calls are interleaved (every
repeat runs every method once, in rotating order), after ``--warmup`` calls each, and the median is reported, so
that load from other processes hits all methods alike. On CUDA the time comes from CUDA events and the memory from
``max_memory_allocated`` (reset before each call); on CPU the memory is the peak of the profiler's memory timeline,
minus the input and the upstream gradient, which exist before the call ("n/a" where that profiler API is
missing). The CPU profiler may log "USDT ... profiler_start" lines to stderr; they are not part of the report.
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ultralytics.nn.modules.Addmodules import DySample
from ultralytics.nn.modules.Addmodules.DySample import triton_available

# name: (channels, height, width, used by) — YOLO11 at imgsz 640: the P5→P4 upsample sees 20×20, the P4→P3 one 40×40
SHAPES = {
    "n-p4": (256, 20, 20, "n"),
    "n-p3": (128, 40, 40, "n"),
    "s-p4": (512, 20, 20, "s, m, l"),
    "s-p3": (256, 40, 40, "s"),
    "ml-p3": (512, 40, 40, "m, l"),
    "x-p4": (768, 20, 20, "x"),
    "x-p3": (768, 40, 40, "x"),
    "paper": (256, 120, 120, "paper (batch 1)"),
}
METHODS = ("fast", "reference", "nearest", "bilinear")


def methods(device):
    """The methods to time: ``triton`` (the opt-in fused kernel, ``DySample.use_triton``) only where it can run."""
    return (*METHODS, "triton") if device == "cuda" and triton_available() else METHODS


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    p.add_argument("--batch", type=int, default=None, help="YOLO shapes' batch (default: 2 on CPU, 16 on CUDA)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per method and mode (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per method and mode first")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=tuple(SHAPES))
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    p.add_argument("--json", default=None, help="also write the JSON report to this file")
    return p.parse_args(argv)


def build(method, channels, device, dtype):
    """The callable for ``method``: (module or None, fn(x) → y). DySample is seeded, with non-trivial offsets."""
    if method in {"nearest", "bilinear"}:
        if method == "nearest":
            return None, nn.Upsample(scale_factor=2, mode="nearest")
        return None, lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.manual_seed(0)
    m = DySample(channels).to(device, dtype)
    with torch.no_grad():
        m.offset.weight.normal_(std=channels**-0.5)  # offsets of about 0.25 pixel, so that sampling really moves
    if method == "triton":
        return m, m._forward_triton
    return m, (m.forward_reference if method == "reference" else m)


def make_input(method, b, c, h, w, device, dtype):
    x = torch.randn(b, c, h, w, device=device, dtype=dtype)
    return x


def step(fn, module, x, grad_out, backward):
    """One call: inference, or forward + gradients w.r.t. the input and parameters."""
    if not backward:
        with torch.no_grad():
            return fn(x)
    y = fn(x)
    inputs = [x, *(module.parameters() if module is not None else ())]
    return torch.autograd.grad(y, inputs, grad_out)


class Timer:
    """Wall time on CPU, CUDA events on CUDA (no sync inside the timed region except at its end)."""

    def __init__(self, device):
        self.cuda = device == "cuda"

    def __call__(self, f):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            f()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        f()
        return (time.perf_counter() - t0) * 1e3


def peak_mib(f, device, given_bytes):
    """Peak memory (MiB) during ``f()`` beyond ``given_bytes`` (tensors that exist before the call); None on CPU
    where the profiler's memory timeline is unavailable."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        f()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    try:
        from torch.profiler import ProfilerActivity, profile

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with profile(
                activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
            ) as p:
                f()
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "timeline.json")
                p.export_memory_timeline(path, device="cpu")
                with open(path) as fh:
                    _, sizes = json.load(fh)
        return max(0.0, (max(sum(s) for s in sizes) - given_bytes) / 2**20)
    except Exception:  # the CPU memory timeline is a deprecated profiler API; report n/a rather than guess
        return None


def bench_shape(name, args, device, dtype):
    """Median ms (and peak MiB) of every method in both modes at one shape, interleaved."""
    c, h, w, _ = SHAPES[name]
    b = 1 if name == "paper" else args.batch
    cases = {}
    for method in methods(args.device):
        module, fn = build(method, c, device, dtype)
        x = make_input(method, b, c, h, w, device, dtype)
        xg = x.detach().clone().requires_grad_()
        with torch.no_grad():
            y = fn(x)
        grad_out = torch.randn_like(y)  # same shape and memory format as the output
        for backward in (False, True):
            xin = xg if backward else x
            cases[(method, backward)] = lambda fn=fn, m=module, x=xin, g=grad_out, bw=backward: step(fn, m, x, g, bw)
    timer = Timer(args.device)
    for f in cases.values():
        for _ in range(args.warmup):
            timer(f)
    times = {k: [] for k in cases}
    keys = list(cases)
    for r in range(args.repeats):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:  # rotate the order between repeats
            times[k].append(timer(cases[k]))
    rows = []
    for method in methods(args.device):
        row = {"shape": name, "batch": b, "channels": c, "height": h, "width": w, "method": method}
        for backward, mode in ((False, "fwd"), (True, "fwd+bwd")):
            row[f"{mode}_ms"] = round(statistics.median(times[(method, backward)]), 3)
            if not args.no_memory:  # the input and the upstream gradient exist before the call: not counted
                given = b * c * h * w * dtype.itemsize * (1 + 4 * backward)
                mib = peak_mib(cases[(method, backward)], args.device, given)
                row[f"{mode}_peak_mib"] = None if mib is None else round(mib, 2)
        rows.append(row)
    by = {r["method"]: r for r in rows}
    for mode in ("fwd", "fwd+bwd"):
        for r in rows:
            r[f"{mode}_vs_reference"] = round(by["reference"][f"{mode}_ms"] / r[f"{mode}_ms"], 3)
            r[f"{mode}_vs_nearest"] = round(r[f"{mode}_ms"] / by["nearest"][f"{mode}_ms"], 3)
    return rows


def environment(args):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {
        "torch": torch.__version__,
        "device": args.device,
        "dtype": args.dtype,
        "batch": args.batch,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    if args.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    return env


def table(rows):
    """Markdown table: per shape and method, ms and MiB in both modes, speed-up over reference, cost vs nearest."""

    def mib(v):
        return "n/a" if v is None else f"{v:.1f}"

    lines = [
        "| shape | B | C×H×W | method | fwd ms | fwd+bwd ms | fwd+bwd peak MiB "
        "| ref/this fwd | ref/this fwd+bwd | this/nearest fwd+bwd |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['batch']} | {r['channels']}×{r['height']}×{r['width']} | {r['method']} "
            f"| {r['fwd_ms']:.2f} | {r['fwd+bwd_ms']:.2f} | {mib(r.get('fwd+bwd_peak_mib'))} "
            f"| {r['fwd_vs_reference']:.2f}× | {r['fwd+bwd_vs_reference']:.2f}× | {r['fwd+bwd_vs_nearest']:.2f}× |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here")
    args.batch = args.batch or (16 if args.device == "cuda" else 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    print(f"DySample benchmark on {args.device}, {args.dtype}, batch {args.batch} (paper shape: batch 1), "
          f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats after {args.warmup} warm-up, median",
          flush=True)  # fmt: skip
    rows = []
    for name in args.shapes:
        t0 = time.perf_counter()
        rows += bench_shape(name, args, device, dtype)
        print(f"  {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    report = {"environment": environment(args), "results": rows}
    print(table(rows))
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return report


if __name__ == "__main__":
    main()
