"""Dataset and DataLoader factories used by the trainer and the validator."""

import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, distributed

from ultralytics.data.dataset import YOLODataset
from ultralytics.data.loaders import cv2_single_thread
from ultralytics.utils import RANK, colorstr

GENERATOR_SEED = 6148914691236517205  # upstream's base seed for the shuffling generator (0x5555...5)


class ResettableDataLoader(DataLoader):
    """DataLoader whose persistent workers can be restarted.

    Workers keep their own copy of the dataset, so a change made in the main process (``close_mosaic``) only
    reaches them after ``reset()``, which shuts them down so the next epoch starts fresh ones. Upstream's trainer
    calls ``train_loader.reset()`` right after closing mosaic for exactly this reason.
    """

    def reset(self):
        """Shut down persistent workers so the next iteration re-forks them with the current dataset."""
        it = getattr(self, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
        self._iterator = None


def seed_worker(worker_id):
    """Seed numpy and random in each worker from torch's per-worker seed, so augmentations differ per worker."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def _cfg(cfg, key, default=None):
    """Read ``key`` from a namespace or dict config, falling back to ``default`` when absent or None."""
    value = cfg.get(key) if isinstance(cfg, dict) else getattr(cfg, key, None)
    return default if value is None else value


def build_yolo_dataset(cfg, img_path, batch, data, mode="train", rect=False, stride=32):
    """Build the YOLODataset of one split with upstream's per-mode settings.

    Args:
        cfg (SimpleNamespace | dict): Run config with upstream default.yaml keys (imgsz, rect, cache, single_cls,
            classes, fraction and the augmentation hyperparameters).
        img_path (str | list): The split's image folder(s) or ``.txt`` list(s), e.g. ``data["train"]``.
        batch (int): Batch size (sets the rectangular batch shapes).
        data (dict): The ``check_det_dataset`` dict.
        mode (str): ``'train'`` augments with pad 0.0 and honours ``fraction``; ``'val'`` letterboxes with pad 0.5.
        rect (bool): Force rectangular batches (the trainer passes ``mode == 'val'``).
        stride (int): Model max stride.
    """
    train = mode == "train"
    return YOLODataset(
        img_path=img_path,
        imgsz=_cfg(cfg, "imgsz", 640),
        batch_size=batch,
        augment=train,
        hyp=cfg,
        rect=bool(_cfg(cfg, "rect", False)) or rect,
        cache=_cfg(cfg, "cache", False) or None,
        single_cls=bool(_cfg(cfg, "single_cls", False)),
        stride=int(stride),
        pad=0.0 if train else 0.5,
        prefix=colorstr(f"{mode}: "),
        classes=_cfg(cfg, "classes"),
        data=data,
        fraction=_cfg(cfg, "fraction", 1.0) if train else 1.0,
    )


def build_dataloader(dataset, batch, workers, shuffle=True, rank=-1, seed=0, drop_last=False, pin_memory=True):
    """Return a ResettableDataLoader over ``dataset`` with upstream's worker, sampler and seeding choices.

    Args:
        dataset (YOLODataset): The dataset (its ``collate_fn`` is used).
        batch (int): Batch size, capped at the dataset length.
        workers (int): Requested worker processes; capped at CPUs per GPU and at the batch size. 0 loads in the
            main process.
        shuffle (bool): Shuffle each epoch (through a DistributedSampler when ``rank != -1``).
        rank (int): DDP rank, -1 without DDP.
        seed (int): Offset of the generator seed, so runs with different seeds shuffle differently.
        drop_last (bool): Drop the last incomplete batch.
        pin_memory (bool): Pin host memory when CUDA is available.
    """
    cv2_single_thread()
    batch = min(batch, len(dataset))
    nd = torch.cuda.device_count()
    nw = max(0, min((os.cpu_count() or 1) // max(nd, 1), batch, workers))
    sampler = None if rank == -1 else distributed.DistributedSampler(dataset, shuffle=shuffle)
    generator = torch.Generator()
    generator.manual_seed(GENERATOR_SEED + int(seed) + max(RANK, 0))
    return ResettableDataLoader(
        dataset=dataset,
        batch_size=batch,
        shuffle=shuffle and sampler is None,
        num_workers=nw,
        sampler=sampler,
        pin_memory=nd > 0 and pin_memory,
        collate_fn=getattr(dataset, "collate_fn", None),
        worker_init_fn=seed_worker,
        persistent_workers=nw > 0,
        generator=generator,
        drop_last=drop_last,
    )
