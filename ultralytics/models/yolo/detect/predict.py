"""Detection predictor: NMS on the head's dense output and boxes mapped back to each original image."""

from ultralytics.engine.predictor import BasePredictor
from ultralytics.engine.results import Results
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import scale_boxes


class DetectionPredictor(BasePredictor):
    """Predict with a YOLO detection model; yields ``Results`` whose boxes are in original-image pixels.

    Examples:
        >>> predictor = DetectionPredictor(overrides={"conf": 0.25, "save": True})
        >>> results = predictor(source="images/", model="bccd-yolo11n.pt")
        >>> results[0].boxes.xyxy
    """

    def postprocess(self, preds, img, orig_imgs):
        """Keep confident, non-overlapping boxes (``conf``, ``iou``, ``classes``, ``agnostic_nms``, ``max_det``).

        Args:
            preds (torch.Tensor | tuple): The head's eval output, (B, 4 + nc, N) xywh pixels and class scores.
            img (torch.Tensor): The letterboxed (B, 3, H, W) network input, to undo the letterbox.
            orig_imgs (list[np.ndarray]): The original BGR images.

        Returns:
            (list[Results]): One per image.
        """
        dets = non_max_suppression(
            preds,
            self.args.conf,
            self.args.iou,
            classes=self.args.classes,
            agnostic=self.args.agnostic_nms,
            max_det=self.args.max_det,
        )
        return [self.construct_result(det, img, im0, path) for det, im0, path in zip(dets, orig_imgs, self.batch[0])]

    def construct_result(self, pred, img, orig_img, img_path):
        """One image's Results: boxes scaled from the letterboxed input back to ``orig_img`` and clipped to it."""
        pred[:, :4] = scale_boxes(img.shape[2:], pred[:, :4], orig_img.shape)
        return Results(orig_img, path=img_path, names=self.model.names, boxes=pred[:, :6])
