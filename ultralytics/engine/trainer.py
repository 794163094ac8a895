"""The training loop shared by task trainers: optimiser, schedule, EMA, AMP, checkpoints, resume, early stop.

Task specifics (model, data, validator, loss names) come from subclass hooks such as
``models/yolo/detect/train.py``. The loop itself is written to be read top to bottom: ``train`` →
``_setup_train`` → ``_train_epoch`` per epoch → ``_end_epoch``.
"""

import copy
import csv
import math
import os
import subprocess
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist
from torch import nn, optim

from ultralytics import __version__
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import attempt_load_one_weight
from ultralytics.utils import DEFAULT_CFG_PATH, LOGGER, colorstr, yaml_save
from ultralytics.utils.checkpoint import load_checkpoint, save_checkpoint, to_plain
from ultralytics.utils.files import increment_path
from ultralytics.utils.torch_utils import (
    EarlyStopping,
    ModelEMA,
    de_parallel,
    init_seeds,
    one_cycle,
    rng_state,
    select_device,
    set_rng_state,
)

ADAM_FAMILY = ("Adam", "Adamax", "AdamW", "NAdam", "RAdam")  # same arguments: betas (momentum, 0.999)
MAX_NAN_RECOVERIES = 3


class BaseTrainer:
    """Train a model with upstream Ultralytics' recipe and outputs.

    Args:
        cfg (str | dict): base configuration (``cfg/default.yaml``).
        overrides (dict): user arguments; unknown keys are refused with suggestions.

    Outputs go to ``runs/<task>/train{,2,3...}``: ``args.yaml``, ``results.csv``, ``results.png``,
    ``weights/last.pt`` and ``weights/best.pt`` (written atomically every epoch).
    """

    def __init__(self, cfg=DEFAULT_CFG_PATH, overrides=None, save_dir=None):
        overrides = dict(overrides or {})
        self.resume_ckpt = self._resume_checkpoint(overrides)
        self.args = get_cfg(cfg, overrides)
        self.rank = int(os.getenv("RANK", -1))  # set by torchrun in each DDP process
        self.world_size = self._world_size()
        self.device = select_device(self.args.device, self.args.batch)
        if save_dir is not None:  # a DDP rank re-created by ultralytics.engine.ddp
            self.save_dir = Path(save_dir)
        elif self.resume_ckpt is not None:
            self.save_dir = Path(self.resume_ckpt["path"]).resolve().parents[1]
        else:
            project = Path(self.args.project or f"runs/{self.args.task}")
            self.save_dir = increment_path(project / (self.args.name or self.args.mode), exist_ok=self.args.exist_ok)
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        self.csv = self.save_dir / "results.csv"
        self.args.save_dir = str(self.save_dir)
        self.epochs = self.args.epochs
        self.start_epoch = 0
        self.best_fitness = None
        self.fitness = None
        self.metrics = {}
        self.tloss = None
        self.loss_names = ("loss",)
        self.amp = False
        self.model = None
        self.ema = None
        self.nan_recoveries = 0
        init_seeds(self.args.seed + 1 + max(self.rank, 0), deterministic=self.args.deterministic)
        self.data = self.get_dataset()

    # ----------------------------------------------------------------------------------------------- hooks
    def get_dataset(self):
        raise NotImplementedError

    def get_model(self, cfg=None, weights=None, verbose=True):
        raise NotImplementedError

    def get_dataloader(self, dataset_path, batch_size=16, rank=-1, mode="train"):
        raise NotImplementedError

    def get_validator(self):
        raise NotImplementedError

    def preprocess_batch(self, batch):
        return batch

    def set_model_attributes(self):
        pass

    def label_loss_items(self, loss_items=None, prefix="train"):
        """Name the loss components for results.csv (``train/box_loss`` ...)."""
        keys = [f"{prefix}/{x}" for x in self.loss_names]
        if loss_items is None:
            return keys
        return dict(zip(keys, [round(float(x), 5) for x in loss_items]))

    def progress_string(self):
        return ("\n" + "%11s" * (4 + len(self.loss_names))) % (
            "Epoch",
            "GPU_mem",
            *self.loss_names,
            "Instances",
            "Size",
        )

    def plot_training_samples(self, batch, ni):
        pass

    # ---------------------------------------------------------------------------------------------- DDP
    def _world_size(self):
        """Processes this run trains with: torchrun's WORLD_SIZE inside a rank, else the number of listed GPUs."""
        if self.rank != -1:
            return int(os.getenv("WORLD_SIZE", 1))
        device = str(self.args.device).replace("cuda:", "")
        return len([d for d in device.split(",") if d.strip()]) if "," in device else 1

    def _launch_ddp(self):
        """Re-run this training under torchrun with one process per GPU, and wait for it."""
        from ultralytics.engine.ddp import launch_command

        cmd, file = launch_command(self, self.world_size)
        LOGGER.info(f"{colorstr('DDP:')} launching {' '.join(cmd)}")
        try:
            subprocess.run(cmd, check=True)
        finally:
            os.remove(file)

    def _setup_ddp(self):
        """Join the process group (NCCL on CUDA, gloo on CPU) and pin this rank's device."""
        if self.device.type == "cuda":
            local = int(os.getenv("LOCAL_RANK", 0))
            ids = [int(d) for d in str(self.args.device).replace("cuda:", "").split(",") if d.strip().isdigit()]
            self.device = torch.device("cuda", ids[local] if local < len(ids) else local)
            torch.cuda.set_device(self.device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def is_main(self):
        """Whether this process logs, validates and saves (rank 0, or the only process)."""
        return self.rank in {-1, 0}

    # ------------------------------------------------------------------------------------------- resume
    @staticmethod
    def _resume_checkpoint(overrides):
        """With ``resume``, load last.pt and adopt its training arguments (the user may change a few)."""
        resume = overrides.get("resume")
        if not resume:
            return None
        path = Path(resume if isinstance(resume, (str, Path)) and str(resume) not in {"True", "true"} else "")
        if path.suffix != ".pt":  # also an empty path: Path("").suffix is ""
            path = Path(overrides.get("model") or "")
        if path.suffix != ".pt" or not path.is_file():
            raise FileNotFoundError(
                f"resume needs the last.pt of an earlier run, e.g. 'yolo train resume model=runs/detect/train/"
                f"weights/last.pt'; '{path}' was not found"
            )
        ckpt = load_checkpoint(path)
        if ckpt.get("optimizer") is None:
            raise ValueError(f"{path} has no optimizer state (training finished or stripped); start a new run instead")
        args = dict(ckpt["train_args"])
        keep = {k: overrides[k] for k in ("imgsz", "batch", "device", "workers", "epochs") if k in overrides}
        args.update(keep, resume=str(path), model=str(path))
        overrides.clear()
        overrides.update({k: v for k, v in args.items() if k != "save_dir"})
        ckpt["path"] = str(path)
        return ckpt

    # ---------------------------------------------------------------------------------------------- setup
    def _setup_train(self):
        """Build model, data, optimiser, scheduler and EMA; restore them when resuming."""
        if self.rank != -1:
            self._setup_ddp()
        self.model = self.get_model(cfg=self.args.model, weights=self.args.pretrained).to(self.device)
        self.set_model_attributes()
        self._freeze_layers()
        self.amp = bool(self.args.amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        gs = max(int(self.model.stride.max()), 32)
        self.stride = gs
        self.batch_size = self.args.batch if self.args.batch > 0 else 16
        per_rank = max(self.batch_size // self.world_size, 1)
        self.train_loader = self.get_dataloader(self.data["train"], per_rank, rank=self.rank, mode="train")
        self.test_loader = self.get_dataloader(
            self.data.get("val") or self.data["train"], self.batch_size * 2, mode="val"
        )
        self.validator = self.get_validator()
        self.accumulate = max(round(self.args.nbs / self.batch_size), 1)
        weight_decay = self.args.weight_decay * self.batch_size * self.accumulate / self.args.nbs
        iterations = math.ceil(len(self.train_loader.dataset) / max(self.batch_size, self.args.nbs)) * self.epochs
        self.optimizer = self.build_optimizer(
            self.model, self.args.optimizer, self.args.lr0, self.args.momentum, weight_decay, iterations
        )
        if self.args.cos_lr:
            self.lf = one_cycle(1, self.args.lrf, self.epochs)
        else:
            self.lf = lambda x: max(1 - x / self.epochs, 0) * (1.0 - self.args.lrf) + self.args.lrf
        self.scheduler = optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=self.lf)
        self.stopper = EarlyStopping(patience=self.args.patience)
        self.ema = ModelEMA(self.model)
        if self.resume_ckpt is not None:
            self._restore(self.resume_ckpt)
        if self.rank != -1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        self.scheduler.last_epoch = self.start_epoch - 1

    def _freeze_layers(self):
        """Freeze the first N layers (or listed layer indices) and always the DFL integral."""
        freeze = self.args.freeze
        layers = list(range(freeze)) if isinstance(freeze, int) else (freeze or [])
        names = [f"model.{x}." for x in layers] + [".dfl"]
        for k, v in self.model.named_parameters():
            if any(x in k for x in names):
                v.requires_grad = False
            elif not v.requires_grad and v.dtype.is_floating_point:
                v.requires_grad = True

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        """Three parameter groups like upstream: biases (pg0), decayed weights (pg1), norm weights (pg2).

        ``optimizer=auto`` picks SGD (lr 0.01) for long schedules and AdamW with a class-count-fitted lr
        otherwise, and then turns the warm-up bias lr off, as upstream does.
        """
        biases, decayed, norms = [], [], []
        norm_types = tuple(v for k, v in nn.__dict__.items() if "Norm" in k)
        for module in model.modules():
            for pname, p in module.named_parameters(recurse=False):
                if not p.requires_grad:
                    continue
                if pname == "bias":
                    biases.append(p)
                elif isinstance(module, norm_types):
                    norms.append(p)
                else:
                    decayed.append(p)
        if name == "auto":
            lr_fit = round(0.002 * 5 / (4 + self.data["nc"]), 6)
            name, lr, momentum = ("SGD", 0.01, 0.9) if iterations > 10000 else ("AdamW", lr_fit, 0.9)
            self.args.warmup_bias_lr = 0.0
            LOGGER.info(
                f"{colorstr('optimizer:')} 'optimizer=auto' found, determined 'optimizer={name}', 'lr0={lr}' and "
                f"'momentum={momentum}' automatically... "
            )
        adam = {n: partial(getattr(optim, n), betas=(momentum, 0.999), weight_decay=0.0) for n in ADAM_FAMILY}
        factories = {
            "SGD": partial(optim.SGD, momentum=momentum, nesterov=True),
            **adam,
            "RMSProp": partial(optim.RMSprop, momentum=momentum),
        }
        if name not in factories:
            raise ValueError(f"optimizer={name!r} is not supported; choose one of {['auto', *factories]}")
        optimizer = factories[name](biases, lr=lr)
        optimizer.add_param_group({"params": decayed, "weight_decay": decay})
        optimizer.add_param_group({"params": norms, "weight_decay": 0.0})
        LOGGER.info(
            f"{colorstr('optimizer:')} {type(optimizer).__name__}(lr={lr}, momentum={momentum}) with parameter groups "
            f"{len(norms)} weight(decay=0.0), {len(decayed)} weight(decay={decay}), {len(biases)} bias(decay=0.0)"
        )
        return optimizer

    # ----------------------------------------------------------------------------------------------- train
    def train(self):
        """Run the whole schedule, then validate best.pt; returns the final metrics."""
        if self.world_size > 1 and self.rank == -1:
            self._launch_ddp()
            return self._metrics_from_best()
        self._setup_train()
        nb = len(self.train_loader)
        self.nw = max(round(self.args.warmup_epochs * nb), 100) if self.args.warmup_epochs > 0 else -1
        LOGGER.info(
            f"Image sizes {self.args.imgsz} train, {self.args.imgsz} val\n"
            f"Using {self.train_loader.num_workers} dataloader workers\n"
            f"Logging results to {colorstr('bold', self.save_dir)}\n"
            f"Starting training for {self.epochs} epochs..."
        )
        self.train_time_start = time.time()
        epoch = self.start_epoch
        self.good_state = self._snapshot()
        while epoch < self.epochs:
            self.epoch = epoch
            if epoch == self.epochs - self.args.close_mosaic:
                self._close_dataloader_mosaic()
            self._train_epoch(epoch, nb)
            if self._recover_if_nan(epoch):
                continue  # the same epoch again, from the last good state
            stop = self._end_epoch(epoch)
            epoch += 1
            if stop:
                break
        if self.is_main:
            self.final_eval()
        if self.rank != -1:
            dist.destroy_process_group()
        LOGGER.info(
            f"\n{epoch - self.start_epoch} epochs completed in "
            f"{(time.time() - self.train_time_start) / 3600:.3f} hours."
        )
        return self.metrics

    def _close_dataloader_mosaic(self):
        LOGGER.info("Closing dataloader mosaic")
        self.train_loader.dataset.close_mosaic(hyp=copy.copy(self.args))
        if hasattr(self.train_loader, "reset"):
            self.train_loader.reset()  # persistent workers hold their own copy of the dataset

    def _warmup(self, ni, epoch):
        """Ramp lr (bias group from warmup_bias_lr), momentum and gradient accumulation over the first iterations."""
        xi = [0, self.nw]
        self.accumulate = max(1, int(np.interp(ni, xi, [1, self.args.nbs / self.batch_size]).round()))
        for j, group in enumerate(self.optimizer.param_groups):
            start = self.args.warmup_bias_lr if j == 0 else 0.0
            group["lr"] = np.interp(ni, xi, [start, group["initial_lr"] * self.lf(epoch)])
            if "momentum" in group:
                group["momentum"] = np.interp(ni, xi, [self.args.warmup_momentum, self.args.momentum])

    def _train_epoch(self, epoch, nb):
        """One pass over the training data with AMP, accumulation and a tqdm bar like upstream's."""
        from tqdm import tqdm

        self.model.train()
        if hasattr(self.train_loader.sampler, "set_epoch"):
            self.train_loader.sampler.set_epoch(epoch)  # a different shuffle per epoch on every rank
        self.tloss = None
        self.nan_batches = 0
        self.optimizer.zero_grad()
        last_opt_step = -1
        LOGGER.info(self.progress_string())
        pbar = tqdm(
            enumerate(self.train_loader), total=nb, bar_format="{l_bar}{bar:10}{r_bar}", disable=not self.is_main
        )
        for i, batch in pbar:
            ni = i + nb * epoch
            if ni <= self.nw:
                self._warmup(ni, epoch)
            batch = self.preprocess_batch(batch)
            with torch.autocast(self.device.type, enabled=self.amp):
                loss, loss_items = self.model(batch)
                loss = loss.sum() * self.world_size  # DDP averages gradients over ranks; upstream scales back
            if not torch.isfinite(loss):
                self.nan_batches += 1
                self.optimizer.zero_grad()
                continue
            self.scaler.scale(loss).backward()
            self.tloss = loss_items.detach() if self.tloss is None else (self.tloss * i + loss_items.detach()) / (i + 1)
            if ni - last_opt_step >= self.accumulate:
                self.optimizer_step()
                last_opt_step = ni
            mem = torch.cuda.memory_reserved() / 1e9 if self.device.type == "cuda" else 0.0
            losses = self.tloss.tolist() if self.tloss.ndim else [self.tloss.item()]
            pbar.set_description(
                ("%11s" * 2 + "%11.4g" * (2 + len(losses)))
                % (f"{epoch + 1}/{self.epochs}", f"{mem:.3g}G", *losses, batch["cls"].shape[0], batch["img"].shape[-1])
            )
            if self.args.plots and ni < 3:
                self.plot_training_samples(batch, ni)
        pbar.close()
        if self.nan_batches:
            LOGGER.warning(f"epoch {epoch + 1}: {self.nan_batches}/{nb} batches had a non-finite loss and were skipped")
        self.lr = {f"lr/pg{i}": x["lr"] for i, x in enumerate(self.optimizer.param_groups)}

    def optimizer_step(self):
        """Unscale, clip the gradient norm to 10, step, and update the EMA."""
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        self.ema.update(self.model)

    # ------------------------------------------------------------------------------------------- epoch end
    def _end_epoch(self, epoch):
        """Validate, log, save and step the schedule; returns True when early stopping triggers."""
        self.ema.update_attr(self.model, include=("yaml", "nc", "args", "names", "stride"))
        final = epoch + 1 >= self.epochs
        stop = final
        if self.is_main:
            if self.args.val or final:
                self.metrics, self.fitness = self.validate()
            stop = self.stopper(epoch + 1, self.fitness) or final
            self.save_metrics({**self.label_loss_items(self.tloss), **self.metrics, **self.lr}, epoch)
            if self.args.save or final:
                self.save_model(epoch)
            if self.args.plots:
                self.plot_metrics()
        if self.rank != -1:  # every rank stops together
            flag = [stop]
            dist.broadcast_object_list(flag, src=0)
            stop = flag[0]
        self.good_state = self._snapshot()
        self.scheduler.step()
        return stop

    def validate(self):
        """Run the validator on the EMA model; fitness defaults to the negative loss when absent."""
        metrics = self.validator(self)
        fitness = metrics.pop("fitness", -float(self.tloss.sum()) if self.tloss is not None else 0.0)
        if self.best_fitness is None or fitness > self.best_fitness:
            self.best_fitness = fitness
        return metrics, fitness

    def save_metrics(self, metrics, epoch):
        """Append one row to results.csv with upstream's columns (epoch, time, losses, metrics, lrs)."""
        keys = list(metrics.keys())
        row = [epoch + 1, round(time.time() - self.train_time_start, 2), *metrics.values()]
        new = not self.csv.exists() or epoch == 0 and self.start_epoch == 0
        with open(self.csv, "w" if new else "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["epoch", "time", *keys])
            writer.writerow([x if isinstance(x, (int, str)) else f"{float(x):.6g}" for x in row])

    def plot_metrics(self):
        from ultralytics.utils.plotting import plot_results

        plot_results(file=self.csv)

    def _checkpoint(self, epoch):
        """The checkpoint dict: upstream's top-level keys, holding plain data only (weights_only-loadable)."""
        model = de_parallel(self.model)
        return {
            "date": datetime.now().isoformat(),
            "version": __version__,
            "license": "AGPL-3.0 License (https://www.gnu.org/licenses/agpl-3.0.html)",
            "epoch": epoch,
            "best_fitness": self.best_fitness,
            "model": model.state_dict(),
            "ema": self.ema.ema.state_dict(),
            "updates": self.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else None,
            "train_args": to_plain(vars(self.args)),
            "train_metrics": {**self.metrics, **({"fitness": self.fitness} if self.fitness is not None else {})},
            "train_results": self._read_results_csv(),
            "yaml": model.yaml,
            "names": model.names,
            "nc": model.nc,
            "stride": model.stride,
            "rng": rng_state(),
            "loader_rng": self.train_loader.generator.get_state() if self.train_loader.generator else None,
            "mosaic_buffer": list(getattr(self.train_loader.dataset, "buffer", [])),  # mosaic partners come from it
        }

    def _read_results_csv(self):
        if not self.csv.exists():
            return {}
        with open(self.csv) as f:
            rows = list(csv.reader(f))
        return {k.strip(): [float(r[i]) for r in rows[1:]] for i, k in enumerate(rows[0])} if rows else {}

    def save_model(self, epoch):
        """Write last.pt every epoch and best.pt when fitness improves (both atomically)."""
        self.wdir.mkdir(parents=True, exist_ok=True)
        ckpt = self._checkpoint(epoch)
        save_checkpoint(ckpt, self.last)
        if self.fitness is not None and self.best_fitness == self.fitness:
            save_checkpoint(ckpt, self.best)
        if self.args.save_period > 0 and (epoch + 1) % self.args.save_period == 0:
            save_checkpoint(ckpt, self.wdir / f"epoch{epoch + 1}.pt")

    def _restore(self, ckpt):
        """Put a resumed run back exactly where last.pt left it: weights, optimiser, EMA, epoch and RNG."""
        self.model.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.ema.ema.load_state_dict(ckpt["ema_state"])
        self.ema.updates = ckpt["raw"]["updates"]
        if ckpt["raw"].get("scaler") and self.amp:
            self.scaler.load_state_dict(ckpt["raw"]["scaler"])
        self.best_fitness = ckpt["raw"].get("best_fitness")
        self.start_epoch = ckpt["epoch"] + 1
        if self.start_epoch >= self.epochs:
            raise ValueError(f"{ckpt['path']} already finished {self.epochs} epochs; nothing to resume")
        if ckpt["raw"].get("rng"):
            set_rng_state(ckpt["raw"]["rng"])
        if ckpt["raw"].get("loader_rng") is not None and self.train_loader.generator is not None:
            self.train_loader.generator.set_state(ckpt["raw"]["loader_rng"])
        if ckpt["raw"].get("mosaic_buffer") and hasattr(self.train_loader.dataset, "restore_buffer"):
            self.train_loader.dataset.restore_buffer([int(i) for i in ckpt["raw"]["mosaic_buffer"]])
        if self.start_epoch >= self.epochs - self.args.close_mosaic:
            self._close_dataloader_mosaic()
        LOGGER.info(f"Resuming training {ckpt['path']} from epoch {self.start_epoch + 1} to {self.epochs} total epochs")

    # ------------------------------------------------------------------------------------------ NaN guard
    def _snapshot(self):
        """In-memory copy of what a NaN recovery needs (cheap next to an epoch of training)."""
        return {
            "model": copy.deepcopy(de_parallel(self.model).state_dict()),
            "ema": copy.deepcopy(self.ema.ema.state_dict()),
            "updates": self.ema.updates,
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _recover_if_nan(self, epoch):
        """After an epoch whose losses or weights went non-finite, roll back to the last good state."""
        bad_loss = self.tloss is None or not torch.isfinite(self.tloss).all()
        bad_weights = any(
            not torch.isfinite(v).all() for v in self.ema.ema.state_dict().values() if v.is_floating_point()
        )
        if not (bad_loss or bad_weights):
            return False
        self.nan_recoveries += 1
        if self.nan_recoveries > MAX_NAN_RECOVERIES:
            raise RuntimeError(
                f"training diverged (non-finite loss or weights) {MAX_NAN_RECOVERIES} times; "
                "try a lower lr0 or amp=False"
            )
        LOGGER.warning(
            f"epoch {epoch + 1}: non-finite loss or weights, restoring the last good state and repeating the epoch "
            f"(recovery {self.nan_recoveries}/{MAX_NAN_RECOVERIES})"
        )
        state = self.good_state
        de_parallel(self.model).load_state_dict(state["model"])
        self.ema.ema.load_state_dict(state["ema"])
        self.ema.updates = state["updates"]
        self.optimizer.load_state_dict(state["optimizer"])
        return True

    def _metrics_from_best(self):
        """After a torchrun launch, read the final metrics the ranks left in best.pt (or last.pt)."""
        for file in (self.best, self.last):
            if file.exists():
                self.metrics = dict(load_checkpoint(file)["raw"].get("train_metrics") or {})
                return self.metrics
        return {}

    # -------------------------------------------------------------------------------------------- final
    def final_eval(self):
        """Validate best.pt (the saved EMA weights) with plots, as upstream does after training."""
        if not self.best.exists():
            return
        model, _ = attempt_load_one_weight(self.best)
        model.args = self.args
        LOGGER.info(f"\nValidating {self.best}...")
        self.validator.args.plots = self.args.plots
        self.metrics = self.validator(model=model.to(self.device))
        self.metrics.pop("fitness", None)
        yaml_save(self.save_dir / "args.yaml", to_plain(vars(self.args)))
