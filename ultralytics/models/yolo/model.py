"""``YOLO``: the user-facing model class, ``YOLO("yolo11n-dysample.yaml").train(data=...)``."""

from ultralytics.engine.model import Model
from ultralytics.nn.tasks import DetectionModel


class YOLO(Model):
    """YOLO11 detection model (stock or with DySample) with upstream's Python API."""

    @property
    def task_map(self):
        """Task classes, imported on first use so that building a model does not load the training stack."""
        from ultralytics.models.yolo import detect

        return {
            "detect": {
                "model": DetectionModel,
                "trainer": detect.DetectionTrainer,
                "validator": detect.DetectionValidator,
                "predictor": detect.DetectionPredictor,
                "exporter": detect.Exporter,
            }
        }
