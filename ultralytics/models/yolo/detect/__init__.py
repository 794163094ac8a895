"""YOLO detection: trainer and validator (the predictor and exporter are exported here as they land)."""

from ultralytics.engine.exporter import Exporter
from ultralytics.models.yolo.detect.predict import DetectionPredictor
from ultralytics.models.yolo.detect.train import DetectionTrainer
from ultralytics.models.yolo.detect.val import DetectionValidator

__all__ = ("DetectionPredictor", "DetectionTrainer", "DetectionValidator", "Exporter")
