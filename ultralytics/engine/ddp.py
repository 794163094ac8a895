"""Multi-GPU training through ``torchrun``: the launcher command and the per-rank entry point.

``yolo train device=0,1`` re-launches itself as ``python -m torch.distributed.run --nproc_per_node 2 -m
ultralytics.engine.ddp <args.json>``. Each rank rebuilds the same trainer class from its import path and the saved
arguments, then trains with DistributedDataParallel. No home-made process pool: torchrun owns the processes.
"""

import importlib
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

from ultralytics.utils.checkpoint import to_plain


def free_port():
    """A free TCP port on localhost for the rendezvous (torchrun's default 29500 may be taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(trainer, world_size):
    """Write the run's arguments to a temp file and return (torchrun command, that file)."""
    payload = {
        "trainer": f"{type(trainer).__module__}:{type(trainer).__qualname__}",
        "overrides": {k: v for k, v in to_plain(vars(trainer.args)).items() if k != "save_dir"},
        "save_dir": str(trainer.save_dir),
    }
    fd, file = tempfile.mkstemp(prefix="ultralytics_ddp_", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(world_size),
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "ultralytics.engine.ddp", file,
    ]  # fmt: skip
    return cmd, file


def build_trainer(file):
    """Recreate the launching process's trainer inside one rank."""
    payload = json.loads(Path(file).read_text())
    module, _, name = payload["trainer"].partition(":")
    cls = getattr(importlib.import_module(module), name)
    overrides = dict(payload["overrides"], exist_ok=True)
    trainer = cls(overrides=overrides, save_dir=payload["save_dir"])
    return trainer


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    build_trainer(argv[0]).train()


if __name__ == "__main__":
    main()
