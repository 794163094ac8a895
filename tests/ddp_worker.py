"""Run by torchrun in tests/test_train.py: one real DDP training step on CPU (gloo), then record the weights.

Each rank writes ``rank:checksum_after:checksum_before`` so the test can check that both ranks hold identical
weights after the step, and that the step changed them.
"""

import sys

from torch import distributed as dist

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils.torch_utils import de_parallel


def checksum(model):
    return f"{sum(float(p.double().sum()) for p in de_parallel(model).parameters()):.12e}"


def main(data, project, out_file):
    trainer = DetectionTrainer(overrides={"model": "yolo11n.yaml", "data": data, "imgsz": 64, "batch": 4,
                                          "workers": 0, "device": "cpu", "project": project, "exist_ok": True,
                                          "plots": False, "optimizer": "SGD", "lr0": 0.01})  # fmt: skip
    trainer._setup_train()
    before = checksum(trainer.model)
    batch = trainer.preprocess_batch(next(iter(trainer.train_loader)))
    loss, _ = trainer.model(batch)
    (loss.sum() * trainer.world_size).backward()
    trainer.optimizer_step()
    after = checksum(trainer.model)
    gathered = [None, None]
    dist.all_gather_object(gathered, f"{trainer.rank}:{after}:{before}")
    if trainer.rank == 0:
        with open(out_file, "w") as f:
            f.write("\n".join(gathered) + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
