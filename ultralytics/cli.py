"""The ``yolo`` / ``ultralytics`` command line: ``yolo TASK MODE key=value ...`` plus a few special commands.

The grammar and the words follow upstream Ultralytics so that commands copied from its docs work here. Parsing and
checking live in small functions (``merge_equals_args``, ``parse_cli_args``, ``resolve_run``) that tests call
directly; ``entrypoint`` only wires them together. The model class is imported lazily, so ``yolo help`` and friends
stay fast and work even when the model stack is broken.
"""

import os
import platform
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from ultralytics import __version__
from ultralytics.cfg import (
    MODES,
    SUPPORTED_TASKS,
    TASK2DATA,
    TASK2MODEL,
    TASKS,
    cfg2dict,
    check_cfg,
    check_dict_alignment,
    get_default_cfg,
    parse_key_value_pair,
)
from ultralytics.utils import DEFAULT_CFG_PATH, LOGGER, ROOT, colorstr

ASSETS = ROOT / "assets"  # default predict source, as upstream
DOCS_HINT = "the docs/ folder of this repository"
DISPATCHED_MODES = ("train", "val", "predict", "export")  # always available; track/benchmark only if the model has them
DEFAULT_TRAIN_MODEL = "yolo11n.yaml"  # offline fork: build from YAML rather than download yolo11n.pt
CHECKED_MODULES = ("torch", "torchvision", "numpy", "cv2", "yaml")  # reported by 'yolo checks'
CLI_ERRORS = (SyntaxError, TypeError, ValueError, FileNotFoundError, NotImplementedError, ImportError)


def help_text(args=None):
    """Return the usage text for ``yolo help``; built on demand so importing this module does no work."""
    received = f"Arguments received: {['yolo', *(args or [])]}. " if args else ""
    return f"""
    {received}This fork's 'yolo' commands use the upstream Ultralytics syntax:

        yolo TASK MODE ARGS

        Where   TASK (optional) is one of {sorted(SUPPORTED_TASKS)} (upstream's {sorted(TASKS - SUPPORTED_TASKS)} are
                    recognised but not built in this fork)
                MODE (required) is one of {sorted(MODES)}
                    ({", ".join(DISPATCHED_MODES)} always work; track and benchmark only where the model offers them)
                ARGS (optional) are any number of custom 'arg=value' pairs like 'imgsz=320' that override defaults.
                    See all ARGS with 'yolo cfg' or in {DEFAULT_CFG_PATH.relative_to(ROOT.parent)}

    1. Train a DySample YOLO11n from scratch for 10 epochs with an initial learning rate of 0.01
        yolo train data=coco8.yaml model=yolo11n-dysample.yaml epochs=10 lr0=0.01

    2. Predict on a folder of images with trained weights at image size 320
        yolo predict model=runs/detect/train/weights/best.pt source=path/to/images imgsz=320

    3. Validate trained weights at batch size 1 and image size 640
        yolo val model=runs/detect/train/weights/best.pt data=coco8.yaml batch=1 imgsz=640

    4. Export trained weights to ONNX at image size 224 by 128 (no TASK required)
        yolo export model=runs/detect/train/weights/best.pt format=onnx imgsz=224,128

    5. Print the layer table and summary of a model
        yolo info model=yolo11n-dysample.yaml

    6. Run special commands:
        yolo help
        yolo checks
        yolo version
        yolo settings
        yolo copy-cfg
        yolo cfg
        yolo info
        yolo graft target=path/to/upstream/site-packages/ultralytics

    Docs: {DOCS_HINT}""".rstrip()


# Special commands -----------------------------------------------------------------------------------------------------
def _cmd_help(request):
    """Print the usage text."""
    LOGGER.info(help_text(request.argv))


def _cmd_version(request):
    """Print the package version, as upstream's ``yolo version`` does."""
    LOGGER.info(__version__)


def _module_version(name):
    """Return an installed module's version, or a note when it is missing, without failing the whole report."""
    try:
        return getattr(import_module(name), "__version__", "installed")
    except ImportError:
        return "not installed"


def _cuda_summary():
    """Describe the CUDA devices torch can see, which is what users need when a run unexpectedly lands on CPU."""
    try:
        import torch
    except ImportError:
        return "unknown (torch not installed)"
    if not torch.cuda.is_available():
        return "not available (CPU only)"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"available, {len(names)} device(s): {', '.join(names)}"


def _cmd_checks(request):
    """Print the software environment, the first thing to ask for in a bug report."""
    rows = {
        "ultralytics": __version__,
        "Python": platform.python_version(),
        "OS": platform.platform(),
        "CPU count": os.cpu_count(),
        **{name: _module_version(name) for name in CHECKED_MODULES},
        "CUDA": _cuda_summary(),
    }
    LOGGER.info("\n".join(f"{k:<14}{v}" for k, v in rows.items()))


def _cmd_settings(request):
    """Explain that this offline fork keeps no settings file, and show where run options come from instead."""
    LOGGER.info(
        "Settings are not persisted in this offline fork: there is no settings file, no sync and no telemetry.\n"
        "Pass options per run as key=value arguments (see 'yolo cfg').\n"
        f"{'default_cfg':<14}{DEFAULT_CFG_PATH}\n"
        f"{'runs_dir':<14}{Path.cwd() / 'runs'}"
    )


def _cmd_cfg(request):
    """Print default.yaml with its comments, which document every argument."""
    LOGGER.info(f"Printing '{colorstr('bold', DEFAULT_CFG_PATH)}'\n\n{DEFAULT_CFG_PATH.read_text()}")


def copy_default_cfg():
    """Copy default.yaml to ``./default_copy.yaml`` as a starting point for a custom ``cfg=`` file."""
    new_file = Path.cwd() / DEFAULT_CFG_PATH.name.replace(".yaml", "_copy.yaml")
    shutil.copy2(DEFAULT_CFG_PATH, new_file)
    LOGGER.info(
        f"{DEFAULT_CFG_PATH} copied to {new_file}\n"
        f"Example YOLO command with this new custom cfg:\n    yolo cfg='{new_file}' imgsz=320 batch=8"
    )
    return new_file


def _cmd_copy_cfg(request):
    """CLI wrapper of ``copy_default_cfg``."""
    copy_default_cfg()


def _cmd_info(request):
    """Build a model and print its layer table and summary: ``yolo info model=yolo11n-dysample.yaml``."""
    overrides = {**request.overrides, **_parse_pairs(request.rest)}
    model = overrides.pop("model", None)
    if not model:
        model = DEFAULT_TRAIN_MODEL
        LOGGER.warning(f"'model' argument is missing. Using default 'model={model}'.")
    if overrides:
        LOGGER.warning(f"'yolo info' only uses 'model'; ignoring {sorted(overrides)}.")
    yolo = _load_model_class("info")
    if str(model).endswith((".yaml", ".yml")):
        yolo(model, verbose=True)  # building from yaml prints the layer table and the summary line
    else:
        yolo(model).info(verbose=True)


def _cmd_graft(request):
    """Apply this fork's DySample delta to an upstream package: ``yolo graft target=.../site-packages/ultralytics``."""
    from ultralytics.utils.graft import run

    run(request.rest)


def _cmd_unsupported(request):
    """Refuse upstream commands that need the network or modules this fork does not ship."""
    raise NotImplementedError(f"'yolo {request.command}' is not available in this offline fork. See 'yolo help'.")


SPECIAL_COMMANDS = {
    "help": _cmd_help,
    "checks": _cmd_checks,
    "version": _cmd_version,
    "settings": _cmd_settings,
    "cfg": _cmd_cfg,
    "copy-cfg": _cmd_copy_cfg,
    "info": _cmd_info,
    "graft": _cmd_graft,
    **dict.fromkeys(("hub", "login", "logout", "solutions", "streamlit-predict"), _cmd_unsupported),
}
SPECIAL_ALIASES = {"h": "help", "check": "checks", "setting": "settings", "v": "version", "copy_cfg": "copy-cfg"}


def special_command_name(word):
    """Map a bare word to a special command, accepting upstream's forgiving spellings (-h, --help, check, ...)."""
    name = word.lstrip("-").lower()
    name = SPECIAL_ALIASES.get(name, name)
    return name if name in SPECIAL_COMMANDS else None


# Parsing --------------------------------------------------------------------------------------------------------------
def _join_equals(args):
    """Join tokens split around '=' by the shell: ['k', '=', 'v'], ['k=', 'v'] and ['k', '=v'] become 'k=v'."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        has_next = i + 1 < len(args)
        if a == "=" and out and has_next:
            out[-1] += f"={args[i + 1]}"
            i += 2
        elif a.startswith("=") and out:
            out[-1] += a
            i += 1
        elif a.endswith("=") and has_next and "=" not in args[i + 1]:
            out.append(a + args[i + 1])
            i += 2
        else:
            out.append(a)
            i += 1
    return out


def _join_brackets(args):
    """Re-join list values the shell split at spaces, e.g. ['imgsz=[320,', '640]'] becomes 'imgsz=[320,640]'."""
    out, current, depth = [], "", 0
    for a in args:
        depth += a.count("[") + a.count("(") - a.count("]") - a.count(")")
        current += a
        if depth <= 0:
            out.append(current)
            current, depth = "", 0
    if current:
        out.append(current)
    return out


def merge_equals_args(args):
    """Undo the shell's splitting so that ``imgsz = 320`` and ``imgsz=[320, 640]`` parse like ``imgsz=320``."""
    return _join_brackets(_join_equals(list(args)))


def _clean_token(a):
    """Drop leading '--' and a trailing ',' that users carry over from other CLIs, warning so they learn the form."""
    if a.startswith("--") and not special_command_name(a):
        LOGGER.warning(f"argument '{a}' does not require leading dashes '--', updating to '{a[2:]}'.")
        a = a[2:]
    if a.endswith(","):
        LOGGER.warning(f"argument '{a}' does not require trailing comma ',', updating to '{a[:-1]}'.")
        a = a[:-1]
    return a


def _parse_pairs(tokens):
    """Parse tokens that must all be key=value pairs (used by ``yolo info``) into a dict."""
    pairs = dict(parse_key_value_pair(_clean_token(a)) for a in merge_equals_args(tokens))
    check_dict_alignment(get_default_cfg(), pairs)
    return pairs


@dataclass
class CLIRequest:
    """What the command line asked for, before defaults are filled in.

    Attributes:
        argv (list): The raw arguments, echoed in help text.
        command (str | None): A special command such as 'help', which ends parsing.
        rest (list): Tokens after the special command, for commands that take their own arguments.
        task (str | None): TASK word or ``task=`` value.
        mode (str | None): MODE word or ``mode=`` value.
        overrides (dict): Checked ``key=value`` arguments (``cfg=`` files already expanded).
    """

    argv: list = field(default_factory=list)
    command: str = None
    rest: list = field(default_factory=list)
    task: str = None
    mode: str = None
    overrides: dict = field(default_factory=dict)


def _cli_vocabulary(defaults):
    """Every bare word the CLI knows, so that a typo such as 'trian' gets a 'train' suggestion."""
    return {**defaults, **dict.fromkeys(TASKS | MODES | SPECIAL_COMMANDS.keys())}


def _add_pair(request, token):
    """Record one key=value token; ``task=`` and ``mode=`` are routed like the bare TASK and MODE words."""
    k, v = parse_key_value_pair(token)
    if k in {"task", "mode"}:
        setattr(request, k, v)
    elif k == "cfg" and v is not None:
        _add_cfg_file(request, v)
    else:
        request.overrides[k] = v


def _add_cfg_file(request, path):
    """Merge a ``cfg=custom.yaml`` under the CLI arguments; its task/mode apply only where the CLI names none."""
    LOGGER.info(f"Overriding {DEFAULT_CFG_PATH} with {path}")
    from_file = {k: v for k, v in cfg2dict(path).items() if k != "cfg" and v is not None}
    for k in ("task", "mode"):
        if getattr(request, k) is None:
            setattr(request, k, from_file.get(k))
        from_file.pop(k, None)
    request.overrides = {**from_file, **request.overrides}  # explicit CLI arguments win over the file


def _add_word(request, word, defaults):
    """Record one bare word: TASK, MODE, a bool switch such as ``resume`` or ``show``, else explain the mistake."""
    if word in TASKS:
        request.task = word
    elif word in MODES:
        request.mode = word
    elif isinstance(defaults.get(word), bool):
        request.overrides[word] = True  # 'yolo train resume' means resume=True, as upstream
    elif word in defaults:
        raise SyntaxError(
            f"'{word}' is a valid YOLO argument but is missing an '=' sign to set its value, "
            f"i.e. try '{word}={defaults[word]}'"
        )
    else:
        check_dict_alignment(_cli_vocabulary(defaults), {word: ""})


def _check_task_and_mode(request):
    """Refuse a task this fork does not build, or a mode that does not exist, naming the valid choices."""
    if request.task is not None and request.task not in SUPPORTED_TASKS:
        if request.task in TASKS:
            raise ValueError(
                f"'task={request.task}' is not supported: this fork builds detection models only (task=detect)."
            )
        raise ValueError(f"Invalid 'task={request.task}'. Valid tasks are {sorted(TASKS)}.")
    if request.mode is not None and request.mode not in MODES:
        raise ValueError(f"Invalid 'mode={request.mode}'. Valid modes are {sorted(MODES)}.")


def parse_cli_args(args):
    """Turn CLI tokens into a checked ``CLIRequest``; nothing runs and no model is built.

    Args:
        args (list[str]): The arguments after ``yolo``, e.g. ``['train', 'epochs=3', 'imgsz', '=', '320']``.

    Returns:
        (CLIRequest): The task, mode, overrides, or the special command to run.

    Raises:
        SyntaxError: Unknown key or word (with suggestions), or a non-bool key given without a value.
        TypeError | ValueError: A value of the wrong type or range, or an unsupported task or unknown mode.
    """
    request, defaults = CLIRequest(argv=list(args)), get_default_cfg()
    tokens = merge_equals_args(args)
    for i, token in enumerate(tokens):
        a = _clean_token(token)
        if "=" in a:
            _add_pair(request, a)
        elif command := special_command_name(a):
            request.command, request.rest = command, tokens[i + 1 :]
            return request
        else:
            _add_word(request, a, defaults)
    check_dict_alignment(defaults, request.overrides)
    check_cfg(request.overrides)
    _check_task_and_mode(request)
    return request


# Defaults per mode ----------------------------------------------------------------------------------------------------
def _default_data(overrides):
    """train/val need a dataset; fall back to coco8.yaml like upstream unless resuming (the run knows its data)."""
    if not overrides.get("data") and not overrides.get("resume"):
        overrides["data"] = TASK2DATA["detect"]
        LOGGER.warning(f"'data' argument is missing. Using default 'data={overrides['data']}'.")


def _default_source(overrides):
    """predict/track need a source; fall back to the bundled assets folder like upstream."""
    if not overrides.get("source"):
        overrides["source"] = str(ASSETS)
        LOGGER.warning(f"'source' argument is missing. Using default 'source={overrides['source']}'.")


def _default_format(overrides):
    """export needs a format; fall back to TorchScript, the default.yaml value."""
    if not overrides.get("format"):
        overrides["format"] = get_default_cfg()["format"]
        LOGGER.warning(f"'format' argument is missing. Using default 'format={overrides['format']}'.")


MODE_DEFAULTS = {
    "train": (_default_data,),
    "val": (_default_data,),
    "predict": (_default_source,),
    "track": (_default_source,),
    "export": (_default_format,),
}


def _default_model(mode):
    """Pick the model when none is given: a YAML for training (nothing to download offline), else upstream's .pt."""
    return DEFAULT_TRAIN_MODEL if mode == "train" else TASK2MODEL["detect"]


def resolve_run(request):
    """Fill in what the user left out (mode, model, data/source/format), warning about each default taken.

    Args:
        request (CLIRequest): A parsed request without a special command.

    Returns:
        (tuple): ``(mode, overrides)`` ready for ``getattr(YOLO(overrides['model']), mode)(**overrides)``.
    """
    mode = request.mode
    if mode is None:
        mode = get_default_cfg()["mode"]
        LOGGER.warning(f"'mode' argument is missing. Valid modes are {sorted(MODES)}. Using 'mode={mode}'.")
    overrides = dict(request.overrides)
    if not overrides.get("model"):
        overrides["model"] = _default_model(mode)
        LOGGER.warning(f"'model' argument is missing. Using default 'model={overrides['model']}'.")
    for fill in MODE_DEFAULTS.get(mode, ()):
        fill(overrides)
    return mode, overrides


# Dispatch -------------------------------------------------------------------------------------------------------------
def _load_model_class(mode):
    """Import YOLO only when a command needs it and check that it offers ``mode`` before building anything."""
    try:
        from ultralytics.models.yolo.model import YOLO
    except ImportError as e:
        raise ImportError(f"the YOLO model class could not be imported ({e}); see 'yolo checks'") from e

    if mode in MODES and not callable(getattr(YOLO, mode, None)):
        supported = [m for m in sorted(MODES) if callable(getattr(YOLO, m, None))]
        raise NotImplementedError(f"mode '{mode}' is not available in this fork. Supported modes are {supported}.")
    return YOLO


def _argv(debug):
    """Arguments after the program name: from ``debug`` (a command string, 'yolo' optional) or ``sys.argv``."""
    if not debug:
        return sys.argv[1:]
    tokens = shlex.split(debug)
    return tokens[1:] if tokens and tokens[0] in {"yolo", "ultralytics"} else tokens


def _fail(error):
    """Report a user mistake as one clean message and exit 1; tracebacks are for bugs, not typos."""
    LOGGER.error(str(error))
    raise SystemExit(1) from None


def entrypoint(debug=""):
    """Run ``yolo TASK MODE ARGS`` or a special command; the console scripts ``yolo`` and ``ultralytics`` land here.

    Argument mistakes (unknown keys, bad values, unsupported task or mode, missing model file) are logged as one
    message and exit with status 1. Errors raised while the mode itself runs propagate with their traceback.

    Args:
        debug (str): A command string used instead of ``sys.argv``, e.g. ``"train epochs=3"`` (handy in tests).

    Returns:
        None: Always, because console scripts pass the return value to ``sys.exit``.
    """
    args = _argv(debug)
    if not args:
        LOGGER.info(help_text())
        return None
    try:
        request = parse_cli_args(args)
        if request.command:
            SPECIAL_COMMANDS[request.command](request)
            return None
        mode, overrides = resolve_run(request)
        model = _load_model_class(mode)(overrides["model"])
    except CLI_ERRORS as e:
        _fail(e)
    getattr(model, mode)(**overrides)
    LOGGER.info(f"💡 Learn more about 'yolo {mode}' in {DOCS_HINT}")
    return None


if __name__ == "__main__":
    entrypoint()
