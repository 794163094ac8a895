"""The ``Model`` front end behind ``YOLO(...)``: one object that builds or loads a model and runs every mode.

Task classes (trainer, validator, predictor) are not imported here: the subclass in ``models/yolo`` hands them
over through ``task_map``, which keeps this floor free of imports from the one above it.
"""

from pathlib import Path

from torch import nn

from ultralytics.cfg import check_dict_alignment, get_default_cfg
from ultralytics.nn.tasks import attempt_load_one_weight, yaml_model_load

KEEP_CKPT_ARGS = ("imgsz", "data", "task", "single_cls")  # what a loaded checkpoint's training args carry over
EXPORTED_SUFFIXES = (".onnx", ".torchscript")  # run through AutoBackend: predict and val only


class Model(nn.Module):
    """Build a model from a yaml or load a ``.pt`` checkpoint (this fork's or upstream's), then train/val/predict.

    Args:
        model (str | Path): ``yolo11n-dysample.yaml`` (new model) or a ``.pt`` file (trained weights).
        task (str, optional): only ``"detect"`` is supported by this fork.
        verbose (bool): print the layer table when building from yaml.
    """

    def __init__(self, model="yolo11n.yaml", task=None, verbose=False):
        super().__init__()
        self.model = None
        self.ckpt = None
        self.ckpt_path = None
        self.cfg = None
        self.trainer = None
        self.metrics = None
        self.overrides = {}
        self.task = task or "detect"
        if self.task not in self.task_map:
            raise ValueError(f"task={self.task!r} is not supported by this fork; supported: {list(self.task_map)}")
        model = str(model).strip()
        suffix = Path(model).suffix.lower()
        if suffix in {".yaml", ".yml"}:
            self._new(model, verbose=verbose)
        elif suffix == ".pt":
            self._load(model)
        elif suffix in EXPORTED_SUFFIXES:
            self._load_exported(model)
        else:
            raise ValueError(
                f"model='{model}' is neither a model yaml (.yaml), a PyTorch checkpoint (.pt) nor an exported model "
                f"({', '.join(EXPORTED_SUFFIXES)})"
            )

    @property
    def task_map(self):
        """{task: {"model": cls, "trainer": cls, "validator": cls, "predictor": cls}}, supplied by subclasses."""
        raise NotImplementedError("use ultralytics.YOLO, which knows the task classes")

    def _smart_load(self, key):
        try:
            return self.task_map[self.task][key]
        except KeyError as e:
            raise NotImplementedError(f"'{key}' is not available for task '{self.task}' in this fork yet") from e

    def _new(self, cfg, verbose=False):
        yaml_model_load(cfg)  # fails early with the missing file's name
        self.cfg = cfg
        self.model = self._smart_load("model")(cfg, verbose=verbose)
        self.overrides = {"model": cfg, "task": self.task}
        self.model.args = {**get_default_cfg(), **self.overrides}

    def _load(self, weights):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"weights '{weights}' not found. This fork never downloads weights: copy the file to {path.resolve()} "
                f"(e.g. an upstream '{path.name}') or build a new model from a yaml such as 'yolo11n-dysample.yaml'"
            )
        self.model, self.ckpt = attempt_load_one_weight(path)
        self.ckpt_path = str(path)
        args = self.model.args if isinstance(self.model.args, dict) else {}
        self.overrides = {k: v for k, v in args.items() if k in KEEP_CKPT_ARGS}
        self.overrides.update(model=str(path), task=self.task)

    def _load_exported(self, file):
        """Keep an exported model as a path; the predictor and validator run it through AutoBackend."""
        if not Path(file).is_file():
            raise FileNotFoundError(f"exported model '{file}' not found")
        self.model = str(file)
        self.overrides = {"model": str(file), "task": self.task}

    def _require_pytorch(self, what):
        """Exported models only predict and validate, as upstream's do."""
        if not isinstance(self.model, nn.Module):
            raise TypeError(
                f"model='{self.model}' should be a *.pt PyTorch model to run {what}; exported formats such as ONNX "
                "and TorchScript only support the 'predict' and 'val' modes"
            )

    # -------------------------------------------------------------------------------------------- modes
    def _mode_args(self, mode, custom, kwargs):
        """Merge args in upstream's order: checkpoint overrides < mode defaults < user kwargs; refuse unknown keys."""
        check_dict_alignment(get_default_cfg(), kwargs)
        return {**self.overrides, **custom, **kwargs, "mode": mode}

    def train(self, trainer=None, **kwargs):
        """Train on ``data=...``; afterwards this object holds best.pt. Returns the final validation metrics."""
        self._require_pytorch("train")
        args = self._mode_args("train", {"data": None}, kwargs)
        if not args.get("data") and not args.get("resume"):
            raise ValueError("train needs a dataset: pass data=your.yaml (or a built-in one such as coco128.yaml)")
        if kwargs.get("cfg"):
            args = {**args, "cfg": kwargs["cfg"]}
        self.trainer = (trainer or self._smart_load("trainer"))(overrides=args)
        self.trainer.train()
        best = self.trainer.best if self.trainer.best.exists() else self.trainer.last
        if best.exists():  # as upstream: hold the trained weights and their imgsz/data, so val() needs no data=
            self._load(best)
        self.metrics = self.trainer.metrics
        return self.metrics

    def val(self, validator=None, **kwargs):
        """Validate on ``data=...`` (default: the dataset the checkpoint was trained on); returns the metrics."""
        args = self._mode_args("val", {"rect": True}, kwargs)
        if not args.get("data"):
            raise ValueError("val needs a dataset: pass data=your.yaml")
        validator = (validator or self._smart_load("validator"))(args=args)
        validator(model=self.model)
        self.metrics = getattr(validator, "metrics", None)
        return self.metrics

    def predict(self, source=None, stream=False, **kwargs):
        predictor = self._smart_load("predictor")
        args = self._mode_args("predict", {"conf": 0.25, "rect": True, "batch": 1}, {**kwargs, "source": source})
        return predictor(overrides=args)(model=self.model, source=source, stream=stream)

    def __call__(self, source=None, stream=False, **kwargs):
        return self.predict(source, stream=stream, **kwargs)

    def export(self, **kwargs):
        self._require_pytorch("export")
        exporter = self._smart_load("exporter")
        custom = {"batch": 1, "data": None, "device": None, "verbose": False}  # upstream's export defaults
        return exporter(overrides=self._mode_args("export", custom, kwargs))(model=self.model)

    # ------------------------------------------------------------------------------------------- helpers
    def info(self, detailed=False, verbose=True):
        """Print (and return) the model summary: layers, parameters, gradients, GFLOPs."""
        self._require_pytorch("info")
        return self.model.info(detailed=detailed, verbose=verbose)

    def fuse(self):
        self._require_pytorch("fuse")
        self.model.fuse()
        return self

    def load(self, weights):
        """Transfer every tensor with a matching name and shape from a checkpoint (e.g. stock yolo11n.pt)."""
        self._require_pytorch("load")
        self.model.load(weights)
        self.overrides["pretrained"] = str(weights)
        return self

    @property
    def names(self):
        if isinstance(self.model, nn.Module):
            return self.model.names
        from ultralytics.nn.autobackend import AutoBackend

        return AutoBackend(self.model, verbose=False).names

    @property
    def device(self):
        return next(self.model.parameters()).device if isinstance(self.model, nn.Module) else None

    def __repr__(self):
        return f"{type(self).__name__}(model={self.overrides.get('model')!r}, task={self.task!r})"
