"""Detection validator: NMS, matching predictions to labels at IoU 0.50:0.95, P/R/mAP, the class table and plots.

Behaviour follows upstream Ultralytics 8.4: predictions and labels are compared in the letterboxed network-input
space of each batch (IoU does not change under the letterbox's uniform scale and shift), matching is greedy in
confidence order, and metrics come from ``DetMetrics``. COCO JSON (``save_json``) and ``save_txt`` are not provided.
"""

import numpy as np
import torch

from ultralytics.data import build_dataloader, build_yolo_dataset
from ultralytics.engine.validator import BaseValidator
from ultralytics.utils import LOGGER
from ultralytics.utils.metrics import ConfusionMatrix, DetMetrics, box_iou
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import xywh2xyxy
from ultralytics.utils.plotting import output_to_target, plot_images

DEFAULT_MAX_DET = 300  # default.yaml's max_det; only this default is raised to fit crowded datasets


class DetectionValidator(BaseValidator):
    """Validate a YOLO detection model.

    Examples:
        >>> validator = DetectionValidator(args={"data": "coco8.yaml", "imgsz": 640})
        >>> metrics = validator(model=model)  # {'metrics/precision(B)': ..., ..., 'fitness': ...}
    """

    def __init__(self, dataloader=None, save_dir=None, args=None):
        """Set the detection task and the ten COCO IoU thresholds."""
        super().__init__(dataloader, save_dir, args)
        self.args.task = "detect"
        self.niou = self.iouv.numel()
        self.metrics = DetMetrics()
        self.confusion_matrix = None

    # ------------------------------------------------------------------------------------------------- data
    def build_dataset(self, img_path, mode="val", batch=None):
        """Val dataset: letterboxed rectangular batches padded by half a stride, as upstream's ``model.val()``."""
        return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, rect=True, stride=self.stride)

    def get_dataloader(self, dataset_path, batch_size):
        """Unshuffled loader over ``dataset_path``; labels of classes the model lacks are dropped with a warning."""
        dataset = self.build_dataset(dataset_path, batch=batch_size, mode="val")
        if self.names and len(self.names) < self.data["nc"]:
            LOGGER.warning(f"Skipping labels of classes the model (nc={len(self.names)}) cannot predict.")
            dataset.update_labels(list(range(len(self.names))))
        return build_dataloader(dataset, batch_size, self.args.workers, shuffle=False, rank=-1)

    def preprocess(self, batch):
        """Move tensors to the device and scale uint8 images to 0-1 floats (fp16 when running half)."""
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                batch[k] = v.to(self.device, non_blocking=self.device.type == "cuda")
        img = batch["img"]
        batch["img"] = (img.half() if self.half else img.float()) / 255
        return batch

    # ------------------------------------------------------------------------------------------ metrics state
    def init_metrics(self, model):
        """Reset counters, metrics and the confusion matrix for this run's class names."""
        self.names = dict(self.names or getattr(model, "names", None) or {})
        self.nc = len(self.names)
        self.seen = 0
        if not self.training:
            self._check_max_det(self.dataloader.dataset)
        self.metrics.names = self.names
        self.metrics.clear_stats()
        self.confusion_matrix = ConfusionMatrix(nc=self.nc, conf=self.args.conf, names=self.names)

    def _check_max_det(self, dataset):
        """Warn when images hold more objects than ``max_det``; raise the default limit so recall is not capped."""
        observed = max((len(lb["cls"]) for lb in getattr(dataset, "labels", [])), default=0)
        if observed <= self.args.max_det:
            return
        msg = f"Dataset images contain up to {observed} objects, but max_det={self.args.max_det} caps recall."
        if self.args.max_det == DEFAULT_MAX_DET:
            self.args.max_det = observed
            msg += f" Setting max_det={observed}."
        LOGGER.warning(msg)

    def get_desc(self):
        """The header the progress bar and the results table share."""
        return ("%22s" + "%11s" * 6) % ("Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)")

    # -------------------------------------------------------------------------------------------- per batch
    def postprocess(self, preds):
        """Multi-label NMS at the validation thresholds; one dict of bboxes (xyxy), conf and cls per image."""
        outputs = non_max_suppression(
            preds,
            self.args.conf,
            self.args.iou,
            multi_label=True,
            agnostic=self.args.single_cls or self.args.agnostic_nms,
            max_det=self.args.max_det,
        )
        return [{"bboxes": x[:, :4], "conf": x[:, 4], "cls": x[:, 5]} for x in outputs]

    def _prepare_batch(self, si, batch):
        """Image ``si``'s labels as classes and xyxy boxes in input pixels, plus what is needed to map back."""
        idx = batch["batch_idx"] == si
        cls = batch["cls"][idx].squeeze(-1)
        bboxes = batch["bboxes"][idx]
        imgsz = batch["img"].shape[2:]
        if cls.shape[0]:
            bboxes = xywh2xyxy(bboxes) * torch.tensor(imgsz, device=bboxes.device)[[1, 0, 1, 0]]
        return {
            "cls": cls,
            "bboxes": bboxes,
            "ori_shape": batch["ori_shape"][si],
            "imgsz": imgsz,
            "ratio_pad": batch["ratio_pad"][si],
            "im_file": batch["im_file"][si],
        }

    def _prepare_pred(self, pred):
        """Single-class validation scores every prediction as class 0."""
        if self.args.single_cls:
            pred["cls"] = pred["cls"] * 0
        return pred

    def update_metrics(self, preds, batch):
        """Record, per image, which predictions are true positives at each IoU threshold."""
        for si, pred in enumerate(preds):
            self.seen += 1
            pbatch = self._prepare_batch(si, batch)
            predn = self._prepare_pred(pred)
            cls = pbatch["cls"].cpu().numpy()
            no_pred = predn["cls"].shape[0] == 0
            self.metrics.update_stats(
                {
                    **self._process_batch(predn, pbatch),
                    "target_cls": cls,
                    "target_img": np.unique(cls),
                    "conf": np.zeros(0) if no_pred else predn["conf"].cpu().numpy(),
                    "pred_cls": np.zeros(0) if no_pred else predn["cls"].cpu().numpy(),
                }
            )
            if self.args.plots:
                detections = torch.cat((predn["bboxes"], predn["conf"][:, None], predn["cls"][:, None]), 1)
                self.confusion_matrix.process_batch(detections, pbatch["bboxes"], pbatch["cls"])

    def _process_batch(self, preds, batch):
        """``{"tp": (N, 10) bool}``: each prediction against the image's labels at every IoU threshold."""
        if batch["cls"].shape[0] == 0 or preds["cls"].shape[0] == 0:
            return {"tp": np.zeros((preds["cls"].shape[0], self.niou), dtype=bool)}
        iou = box_iou(batch["bboxes"], preds["bboxes"])
        return {"tp": self.match_predictions(preds["cls"], batch["cls"], iou).cpu().numpy()}

    # -------------------------------------------------------------------------------------------- reporting
    def get_stats(self):
        """P, R, mAP50, mAP50-95 and fitness (curves are plotted here when ``plots``)."""
        self.metrics.process(save_dir=self.save_dir, plot=self.args.plots, on_plot=self.on_plot)
        stats = self.metrics.results_dict
        self.metrics.clear_stats()
        return stats

    def finalize_metrics(self):
        """Save both confusion matrices and attach speed and the matrix to the metrics object."""
        if self.args.plots:
            for normalize in (True, False):
                self.confusion_matrix.plot(save_dir=self.save_dir, normalize=normalize, on_plot=self.on_plot)
        self.metrics.speed = self.speed
        self.metrics.confusion_matrix = self.confusion_matrix
        self.metrics.save_dir = self.save_dir

    def print_results(self):
        """Log the 'all' row and, standalone with several classes and ``verbose``, one row per class."""
        pf = "%22s" + "%11i" * 2 + "%11.3g" * len(self.metrics.keys)
        nt_per_class = self.metrics.nt_per_class
        if nt_per_class is None:  # nothing was evaluated (empty loader)
            nt_per_class = np.zeros(self.nc, dtype=int)
        LOGGER.info(pf % ("all", self.seen, nt_per_class.sum(), *self.metrics.mean_results()))
        if nt_per_class.sum() == 0:
            LOGGER.warning(f"no labels found in {self.args.task} set, cannot compute metrics without labels")
        if self.args.verbose and not self.training and self.nc > 1:
            for i, c in enumerate(self.metrics.ap_class_index):
                row = (self.names[c], self.metrics.nt_per_image[c], nt_per_class[c], *self.metrics.class_result(i))
                LOGGER.info(pf % row)

    def plot_val_samples(self, batch, ni):
        """Save ``val_batch{ni}_labels.jpg``."""
        plot_images(
            batch["img"],
            batch["batch_idx"],
            batch["cls"].squeeze(-1),
            batch["bboxes"],
            paths=batch["im_file"],
            fname=self.save_dir / f"val_batch{ni}_labels.jpg",
            names=self.names,
            on_plot=self.on_plot,
        )

    def plot_predictions(self, batch, preds, ni):
        """Save ``val_batch{ni}_pred.jpg`` (boxes above the plotting confidence 0.25)."""
        rows = [torch.cat((p["bboxes"], p["conf"][:, None], p["cls"][:, None]), 1) for p in preds]
        batch_idx, cls, boxes, conf = output_to_target(rows, max_det=self.args.max_det)
        plot_images(
            batch["img"],
            batch_idx,
            cls,
            boxes,
            confs=conf,
            paths=batch["im_file"],
            fname=self.save_dir / f"val_batch{ni}_pred.jpg",
            names=self.names,
            on_plot=self.on_plot,
        )
