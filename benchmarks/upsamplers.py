"""Cost of each upsampler in YOLO11: parameters, FLOPs, latency and memory (the DySample paper's comparison).

Example:
    python benchmarks/upsamplers.py                      # YOLO11n, CPU, batch 1, about 1 minute on 2 cores
    python benchmarks/upsamplers.py --device 0 --batch 16 --repeats 50

For every upsampler (nearest = stock yolo11, bilinear, CARAFE and the four DySample variants) it builds the model
yaml and reports:

* parameters and GFLOPs the upsampler adds to the model, as ``model.info()`` counts them. That counter
  (``torch.utils.flop_counter``) sees only convolutions and matrix products: ``grid_sample``, window gathers,
  interpolation and softmax count 0. So the upsampler's own FLOPs are ALSO worked out here: convolution FLOPs
  (2 × MACs, from the layers' shapes) plus the sampling / reassembly work (bilinear sampling: 4 MACs per
  output element and channel; CARAFE reassembly: k_up² MACs per output element and channel; softmax: 3 FLOPs per
  kernel weight; elementwise ops on DySample's offsets: 1 FLOP each);
* per-module latency (forward, and forward + backward) and peak memory (inference and training) at the shapes the
  model's upsamplers see at ``--imgsz`` (256×20×20 and 128×40×40 for YOLO11n at 640);
* whole-model forward latency at ``--imgsz``, batch 1, fused, in eval mode.

Timings are medians over ``--repeats`` rounds; within a round every upsampler runs once, in turn, so a slow spell
of the machine hits all of them alike. Ratios are against nearest from the same run. Memory is the peak of tensor
storage allocated while the module runs (inputs and weights excluded), tracked per operator, so it is the same on
any device and needs no profiler.
"""

import argparse
import copy
import json
import statistics
import time
import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ultralytics.nn.modules.Addmodules import CARAFE, DySample
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import select_device

VARIANTS = (  # (name in tables, yaml suffix after "yolo11<scale>")
    ("nearest", ""),
    ("bilinear", "-bilinear"),
    ("CARAFE", "-carafe"),
    ("DySample", "-dysample"),
    ("DySample-S", "-dysample-pl"),
    ("DySample+", "-dysample-lp-dyscope"),
    ("DySample-S+", "-dysample-pl-dyscope"),
)
UPSAMPLERS = (nn.Upsample, CARAFE, DySample)


class PeakMemory(TorchDispatchMode):
    """Track the bytes of tensor storage that operators allocate, and the peak of what is alive at once."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._keys = set()

    def _free(self, key, nbytes):
        self._keys.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and not t.is_meta:
                storage = t.untyped_storage()
                key, nbytes = storage.data_ptr(), storage.nbytes()
                if nbytes and key not in self._keys:  # a view of a storage already counted adds nothing
                    self._keys.add(key)
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, nbytes)
        return out


def conv_flops(module, shape):
    """FLOPs (2 × MACs, bias excluded, as the model counter) of the upsampler's convolutions, from their shapes.

    Worked out from the configuration rather than hooked, because DySample may run its convs functionally (folded
    weights). CARAFE's two convs and DySample ``lp``'s run at the input size; DySample ``pl``'s at the output size.
    """
    b, _, h, w = shape
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    positions = b * h * w * (module.scale**2 if getattr(module, "style", "") == "pl" else 1)
    return sum(2 * positions * m.out_channels * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
               for m in convs)  # fmt: skip


def other_flops(module, shape):
    """FLOPs the counter misses: sampling, reassembly, softmax and offset arithmetic, from the formulas above."""
    b, c, h, w = shape
    if isinstance(module, nn.Upsample):
        s = int(module.scale_factor)
        return 0 if module.mode == "nearest" else 8 * b * c * s * h * s * w  # 4 MACs per output element
    if isinstance(module, CARAFE):
        s, k2 = module.scale, module.k_up**2
        return 2 * k2 * b * c * s * h * s * w + 3 * k2 * b * s * h * s * w  # reassembly + softmax
    if isinstance(module, DySample):
        s, offsets = module.scale, 2 * module.groups * module.scale**2 * b * h * w
        per_offset = 4 if hasattr(module, "scope") else 2  # (sigmoid, ×, ×0.5,) or (×0.25,), then + init_pos
        return 8 * b * c * s * h * s * w + (per_offset + 2) * offsets  # sampling + offsets + grid normalisation
    raise TypeError(f"no FLOP formula for {type(module).__name__}")


def upsample_layers(model, imgsz):
    """Return [(layer, input shape)] for the model's upsamplers, shapes recorded from one forward at ``imgsz``."""
    found = []
    handles = [
        m.register_forward_pre_hook(lambda m, a: found.append((m, tuple(a[0].shape))))
        for m in model.model
        if isinstance(m, UPSAMPLERS)
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, imgsz, imgsz))
    for h in handles:
        h.remove()
    return found


def peak_memory(module, x, train):
    """Peak MiB allocated by one forward (inference) or forward + backward (training) of ``module``."""
    x = x.detach().requires_grad_(train)
    module = copy.deepcopy(module).train(train)
    tracker = PeakMemory()
    with tracker, torch.set_grad_enabled(train):
        y = module(x)
        if train:
            y.backward(torch.ones_like(y))
    return tracker.peak / 2**20


def timer(fn, device):
    """Return a callable that runs ``fn`` once and gives the seconds it took, synchronising a GPU."""

    def run():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    return run


def module_jobs(name, layers, batch, device):
    """Timed callables for each upsampler layer: forward (eval, no grad) and forward + backward (train)."""
    jobs = {}
    for j, (layer, shape) in enumerate(layers):
        m = copy.deepcopy(layer).to(device)  # the model's own layer stays in eval mode, without grads
        x = torch.randn(batch, *shape[1:], device=device)
        xg = x.clone().requires_grad_()

        def fwd(m=m, x=x):
            with torch.no_grad():
                m.eval()(x)

        def fwd_bwd(m=m, x=xg):
            y = m.train()(x)
            y.backward(torch.ones_like(y))
            m.zero_grad(set_to_none=True)

        jobs[(name, j, "fwd")] = timer(fwd, device)
        jobs[(name, j, "train")] = timer(fwd_bwd, device)
    return jobs


def model_job(name, model, imgsz, device):
    """Timed callable: one batch-1 forward of the fused model at ``imgsz``."""
    model = model.to(device).fuse(verbose=False).eval()
    x = torch.zeros(1, 3, imgsz, imgsz, device=device)

    def fwd():
        with torch.no_grad():
            model(x)

    return {(name, -1, "model"): timer(fwd, device)}


def interleaved_medians(jobs, repeats, warmup):
    """Run every job once per round for ``warmup + repeats`` rounds; return each job's median in milliseconds."""
    times = {k: [] for k in jobs}
    for r in range(warmup + repeats):
        for k, run in jobs.items():
            dt = run()
            if r >= warmup:
                times[k].append(dt)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def static_costs(scale, imgsz, batch):
    """Build every variant: parameters, counter GFLOPs, and per-layer analytic FLOPs, memory and shapes."""
    rows, built = [], {}
    for name, suffix in VARIANTS:
        model = DetectionModel(f"yolo11{scale}{suffix}.yaml", verbose=False)
        _, params, _, gflops = model.info(verbose=False, imgsz=imgsz)
        layers = upsample_layers(model, imgsz)
        per_layer = []
        for layer, shape in layers:
            x = torch.randn(batch, *shape[1:])
            per_layer.append({
                "shape": list(shape[1:]),
                "params": sum(p.numel() for p in layer.parameters()),
                "conv_mflops": conv_flops(layer, (batch, *shape[1:])) / 1e6,
                "other_mflops": other_flops(layer, (batch, *shape[1:])) / 1e6,
                "mem_infer_mib": peak_memory(layer, x, train=False),
                "mem_train_mib": peak_memory(layer, x, train=True),
            })  # fmt: skip
        rows.append({"upsampler": name, "yaml": f"yolo11{scale}{suffix}.yaml", "params": params,
                     "gflops_counter": gflops, "layers": per_layer})  # fmt: skip
        built[name] = (model, layers)
    base = rows[0]
    for r in rows:
        r["params_added"] = r["params"] - base["params"]
        r["gflops_counter_added"] = r["gflops_counter"] - base["gflops_counter"]
        r["gflops_analytic"] = sum(x["conv_mflops"] + x["other_mflops"] for x in r["layers"]) / 1e3
    return rows, built


def timings(rows, built, args, device):
    """Add median latencies (ms) and ratios vs nearest to ``rows``, all measured interleaved in one run."""
    jobs = {}
    for name, (model, layers) in built.items():
        jobs |= module_jobs(name, layers, args.batch, device)
        if not args.skip_model:
            jobs |= model_job(name, model, args.imgsz, device)
    medians = interleaved_medians(jobs, args.repeats, args.warmup)
    for r in rows:
        for j, layer in enumerate(r["layers"]):
            layer["fwd_ms"] = medians[(r["upsampler"], j, "fwd")]
            layer["train_ms"] = medians[(r["upsampler"], j, "train")]
        r["model_ms"] = medians.get((r["upsampler"], -1, "model"))
    base = rows[0]
    for r in rows:
        r["model_ratio"] = r["model_ms"] / base["model_ms"] if r["model_ms"] else None
        for layer, ref in zip(r["layers"], base["layers"]):
            layer["fwd_ratio"] = layer["fwd_ms"] / ref["fwd_ms"]


def print_tables(rows, args, device):
    """Print the cost table, then one latency/memory table per upsampler position."""
    print(f"\nYOLO11{args.scale}, imgsz {args.imgsz}, device {device}, threads {torch.get_num_threads()}, "
          f"batch {args.batch} (module rows), {args.repeats} interleaved rounds, medians")  # fmt: skip
    print(f"\n{'upsampler':<13}{'params':>11}{'Δ params':>10}{'Δ GFLOPs counter':>18}{'GFLOPs analytic':>17}"
          f"{'model ms':>10}{'× nearest':>11}")  # fmt: skip
    for r in rows:
        ms = f"{r['model_ms']:.1f}" if r["model_ms"] else "-"
        ratio = f"{r['model_ratio']:.3f}" if r["model_ratio"] else "-"
        print(f"{r['upsampler']:<13}{r['params']:>11,}{r['params_added']:>+10,}{r['gflops_counter_added']:>+18.4f}"
              f"{r['gflops_analytic']:>17.4f}{ms:>10}{ratio:>11}")  # fmt: skip
    for j in range(len(rows[0]["layers"])):
        shape = "×".join(map(str, rows[0]["layers"][j]["shape"]))
        print(f"\nupsampler at {shape} (batch {args.batch})")
        print(f"{'upsampler':<13}{'params':>8}{'MFLOPs conv':>13}{'MFLOPs other':>14}{'fwd ms':>9}{'× nearest':>11}"
              f"{'train ms':>10}{'mem MiB inf':>13}{'mem MiB train':>15}")  # fmt: skip
        for r in rows:
            x = r["layers"][j]
            print(f"{r['upsampler']:<13}{x['params']:>8,}{x['conv_mflops']:>13.2f}{x['other_mflops']:>14.2f}"
                  f"{x['fwd_ms']:>9.2f}{x['fwd_ratio']:>11.2f}{x['train_ms']:>10.2f}{x['mem_infer_mib']:>13.2f}"
                  f"{x['mem_train_mib']:>15.2f}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="n", choices=list("nslmx"), help="YOLO11 model scale")
    parser.add_argument("--imgsz", type=int, default=640, help="image size for FLOPs, shapes and model latency")
    parser.add_argument("--batch", type=int, default=1, help="batch for the per-module rows")
    parser.add_argument("--repeats", type=int, default=20, help="timed interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA index such as 0")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    parser.add_argument("--skip-model", action="store_true", help="time the modules only, not whole models")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device, verbose=False)
    rows, built = static_costs(args.scale, args.imgsz, args.batch)
    timings(rows, built, args, device)
    print_tables(rows, args, device)
    print(json.dumps({"device": str(device), "threads": torch.get_num_threads(), "imgsz": args.imgsz,
                      "batch": args.batch, "repeats": args.repeats, "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
