"""Detection trainer: the task hooks of ``BaseTrainer`` for YOLO detection models."""

from copy import copy
from pathlib import Path

import torch

from ultralytics.data import build_dataloader, build_yolo_dataset, check_det_dataset
from ultralytics.engine.trainer import BaseTrainer
from ultralytics.nn.tasks import DetectionModel, attempt_load_one_weight
from ultralytics.utils import LOGGER, RANK

from .val import DetectionValidator


class DetectionTrainer(BaseTrainer):
    """Train a detector: ``DetectionTrainer(overrides={"model": "yolo11n-dysample.yaml", "data": d}).train()``."""

    def get_dataset(self):
        return check_det_dataset(self.args.data)

    def get_model(self, cfg=None, weights=None, verbose=True):
        """Build from a yaml (or a .pt's yaml); ``weights`` True reuses a .pt model's weights, a path transfers them."""
        if isinstance(cfg, (str, Path)) and str(cfg).endswith(".pt"):
            source, _ = attempt_load_one_weight(cfg)
            model = DetectionModel(source.yaml, nc=self.data["nc"], verbose=verbose and RANK in {-1, 0})
            if weights is not False:
                model.load(source.state_dict(), verbose=verbose)
        else:
            model = DetectionModel(cfg, nc=self.data["nc"], verbose=verbose and RANK in {-1, 0})
        if isinstance(weights, (str, Path)) and str(weights).endswith(".pt"):
            model.load(weights, verbose=verbose)
        return model

    def set_model_attributes(self):
        self.model.nc = self.data["nc"]
        self.model.names = self.data["names"]
        self.model.args = self.args

    def get_dataloader(self, dataset_path, batch_size=16, rank=-1, mode="train"):
        dataset = build_yolo_dataset(
            self.args, dataset_path, batch_size, self.data, mode=mode, rect=mode == "val", stride=self.stride
        )
        shuffle = mode == "train"
        if getattr(dataset, "rect", False) and shuffle:
            LOGGER.warning("'rect=True' is incompatible with DataLoader shuffle, setting shuffle=False")
            shuffle = False
        workers = self.args.workers if mode == "train" else self.args.workers * 2
        return build_dataloader(dataset, batch_size, workers, shuffle, rank, seed=self.args.seed)

    def preprocess_batch(self, batch):
        """Move the batch to the device and scale images to 0..1 floats."""
        out = {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        out["img"] = out["img"].float() / 255
        return out

    def get_validator(self):
        self.loss_names = ("box_loss", "cls_loss", "dfl_loss")
        return DetectionValidator(self.test_loader, save_dir=self.save_dir, args=copy(self.args))

    def plot_training_samples(self, batch, ni):
        from ultralytics.utils.plotting import plot_images

        plot_images(
            images=batch["img"], batch_idx=batch["batch_idx"], cls=batch["cls"].squeeze(-1), bboxes=batch["bboxes"],
            paths=batch["im_file"], fname=self.save_dir / f"train_batch{ni}.jpg", names=self.data["names"],
        )  # fmt: skip
