"""Detection data pipeline: dataset yaml checks, the YOLO dataset, its transforms and the DataLoader factory.

This package builds only on ``ultralytics.utils`` (plus torch, numpy, cv2, PIL and yaml), never on ``nn``,
``engine`` or ``models``.
"""

from ultralytics.data.augment import Format, LetterBox
from ultralytics.data.build import ResettableDataLoader, build_dataloader, build_yolo_dataset
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths, verify_image_label

__all__ = (
    "IMG_FORMATS",
    "Format",
    "LetterBox",
    "ResettableDataLoader",
    "YOLODataset",
    "build_dataloader",
    "build_yolo_dataset",
    "check_det_dataset",
    "img2label_paths",
    "verify_image_label",
)
