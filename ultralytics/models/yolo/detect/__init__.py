"""YOLO detection: the trainer, validator, predictor and exporter that ``YOLO.task_map`` hands out."""

from ultralytics.engine.exporter import Exporter
from ultralytics.models.yolo.detect.predict import DetectionPredictor
from ultralytics.models.yolo.detect.train import DetectionTrainer
from ultralytics.models.yolo.detect.val import DetectionValidator

__all__ = ("DetectionPredictor", "DetectionTrainer", "DetectionValidator", "Exporter")
