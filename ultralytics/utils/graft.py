"""Graft this fork's DySample delta (with its CARAFE baseline) onto an installed or checked-out upstream Ultralytics.

Rebasing onto a new upstream release starts with one question: does the delta still fit? ``graft(target)`` answers
it by applying exactly what CONTRIBUTING.md lists as the delta to an upstream ``ultralytics`` folder (the one that
holds ``nn/tasks.py``):

1. copy this fork's ``nn/modules/Addmodules/*.py`` into ``<target>/nn/modules/Addmodules/``;
2. patch ``<target>/nn/tasks.py``: the Addmodules import (``NAMES``: DySample, its alias Dy_Sample, CARAFE) after
   the ``from ultralytics.nn.modules import (...)`` statement, and one ``parse_model`` branch for all of them just
   before the final ``else: c2 = ch[f]`` of its module chain; every added line carries the ``# DySample graft``
   marker so the patch can be found, repaired and undone;
3. copy the upsampler yamls (``YAML_GLOBS``) beside upstream's ``yolo11.yaml``.

All new file contents are computed in memory and every anchor is checked before anything is written, so a target
whose code moved on is refused with a ``GraftError`` naming the missing anchor and file, and is left untouched. A
write that fails half-way is rolled back. Grafting twice is a no-op. Only the standard library and
``ultralytics.utils`` are used, so this works even when the fork's model stack is broken.

Usage:
    yolo graft target=/path/to/site-packages/ultralytics [check] [undo]
    python -m ultralytics.utils.graft /path/to/site-packages/ultralytics [--check] [--undo]
"""

import ast
import contextlib
import difflib
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ultralytics.utils import LOGGER, ROOT

MARK = "# DySample graft"
TASKS = Path("nn", "tasks.py")
MODULES_DIR = Path("nn", "modules")
ADDMODULES = MODULES_DIR / "Addmodules"
YAML_DIR = Path("cfg", "models", "11")
# The yamls copied beside upstream's yolo11.yaml: the whole upsampler comparison, so a grafted upstream can rerun it
# from the same files. Bilinear needs no new module (nn.Upsample), but upstream does not ship that yaml. Named
# explicitly, not 'yolo11-*.yaml', so an upstream yaml (yolo11-seg.yaml, ...) is never overwritten by a fork copy.
YAML_GLOBS = ("yolo11-dysample*.yaml", "yolo11-carafe*.yaml", "yolo11-bilinear*.yaml")
PACKAGE = "ultralytics"
IMPORT_ANCHOR = "ultralytics.nn.modules"  # the statement 'from ultralytics.nn.modules import (...)'
LOOKUP_ANCHOR = "globals()[m]"  # how parse_model turns a yaml name into a class: the import must make it visible
ELSE_ANCHOR = "c2 = ch[f]"  # the body of the final 'else:' of parse_model's module chain
# The Addmodules classes the import brings in and the one branch handles: all share its channel rule (in = out =
# ch[f], prepended to the yaml args). Dy_Sample is the tutorial's alias of DySample. A module with another rule
# needs its own branch, not an entry here.
NAMES = ("DySample", "Dy_Sample", "CARAFE")
IMPORT_LINE = f"from ultralytics.nn.modules.Addmodules import {', '.join(NAMES)}  {MARK}"
BRANCH_LINES = (  # (nesting below the 'else:' line, text)
    (0, f"elif m in {{{', '.join(NAMES)}}}:  {MARK}: channels in = out = ch[f], prepended to the args"),
    (1, f"c2 = ch[f]  {MARK}"),
    (1, f"args = [c2, *args]  {MARK}"),
)
FOREIGN_NAMES = re.compile(rf"\b({'|'.join(NAMES)})\b")
USAGE = (
    "usage: yolo graft target=/path/to/site-packages/ultralytics [check] [undo]\n"
    "       python -m ultralytics.utils.graft /path/to/site-packages/ultralytics [--check] [--undo]\n"
    "  target  the upstream 'ultralytics' package folder (the one holding nn/tasks.py); required\n"
    "  check   dry run: report what would change and write nothing\n"
    "  undo    remove a previous graft instead of applying one"
)
VERIFY_HINT = (
    "Verify in the upstream environment (upstream has no 'yolo info'):\n"
    "  python -c \"from ultralytics import YOLO; YOLO('yolo11n-dysample.yaml').info()\"\n"
    "  expected: YOLO11n-dysample summary: 181 layers, 2,636,432 parameters\n"
    "  likewise yolo11n-carafe.yaml: 183 layers, 2,764,184 parameters"
)


class GraftError(ValueError):
    """The target cannot be grafted as it is; raised before anything is written (a ValueError, so the CLI exits 1)."""


@dataclass(frozen=True)
class FileChange:
    """One file the graft writes or deletes, with both contents, so it can be applied, reported and rolled back.

    Attributes:
        rel (Path): Path relative to the target package folder.
        old (bytes | None): Current contents, None when the file does not exist yet.
        new (bytes | None): Contents to write, None to delete the file (undo).
        why (str): What the change is for, shown in the report.
    """

    rel: Path
    old: bytes
    new: bytes
    why: str

    @property
    def action(self):
        """'create', 'update' or 'delete', for the report."""
        return "create" if self.old is None else "delete" if self.new is None else "update"


@dataclass
class GraftReport:
    """What a graft (or undo) did or, in check mode, would do; ``str()`` gives the human-readable report."""

    target: Path
    changes: list = field(default_factory=list)
    undo: bool = False
    check: bool = False

    @property
    def already_applied(self):
        """True when the target is already in the requested state, i.e. this call changed nothing."""
        return not self.changes

    def __str__(self):
        what = "Undo of the DySample graft on" if self.undo else "DySample graft onto"
        head = f"{'Check: ' if self.check else ''}{what} {self.target} ({_upstream_version(self.target)})"
        if self.already_applied:
            state = "not grafted" if self.undo else "already applied"
            return f"{head}: {state}, nothing to do."
        verb = "would " if self.check else ""
        rows = [f"  {verb}{c.action:<6} {c.rel.as_posix()}: {c.why}" for c in self.changes]
        return "\n".join([f"{head}:", *rows])

    def diff(self):
        """Unified diff of the patched text files (``nn/tasks.py``), for reviewing a check run."""
        out = []
        for c in self.changes:
            if c.old is not None and c.new is not None and c.rel.suffix == ".py":
                old, new = c.old.decode().splitlines(True), c.new.decode().splitlines(True)
                out += difflib.unified_diff(old, new, f"a/{c.rel.as_posix()}", f"b/{c.rel.as_posix()}", n=2)
        return "".join(out)


# Locating the target ------------------------------------------------------------------------------------------------
def resolve_target(target):
    """Return the upstream package folder: ``target`` itself, or ``target/ultralytics`` for a site-packages path.

    Refuses this fork's own folder: grafting the delta onto itself would make no sense and its tasks.py has no
    upstream anchors anyway, so say so plainly.
    """
    path = Path(target).expanduser().resolve()
    if not (path / TASKS).is_file() and (path / PACKAGE / TASKS).is_file():
        path = path / PACKAGE
    if not (path / TASKS).is_file():
        raise GraftError(f"{path} is not an ultralytics package folder: {path / TASKS} does not exist.\n{USAGE}")
    if path == ROOT.resolve():
        raise GraftError(f"{path} is this fork itself; point target= at an upstream ultralytics package.")
    return path


def _upstream_version(target):
    """The target's ``__version__`` as written in its ``__init__.py``, read as text so nothing upstream is imported."""
    init = Path(target) / "__init__.py"
    text = init.read_text(encoding="utf-8", errors="replace") if init.is_file() else ""
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    return f"ultralytics {match.group(1)}" if match else "unknown version"


def _read(path):
    """File bytes, or None when the file does not exist."""
    return path.read_bytes() if path.is_file() else None


# Patching tasks.py --------------------------------------------------------------------------------------------------
def _lines(text):
    """Split keeping line ends, on '\\n' only, so indices match ``ast`` line numbers (unlike ``str.splitlines``)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _newline(lines):
    """The file's own line ending, so inserted lines do not mix '\\r\\n' into a '\\n' file or the reverse."""
    return "\r\n" if lines and lines[0].endswith("\r\n") else "\n"


def _indent(line):
    return line[: len(line) - len(line.lstrip())]


def _missing(anchor, where):
    return GraftError(
        f"anchor {anchor} not found in {where}: upstream has restructured this code, so the DySample graft "
        "cannot be applied automatically. Nothing was written; update ultralytics/utils/graft.py for this release."
    )


def _import_anchor(tree, where):
    """Line number after which the import goes: the end of the top-level ``from ultralytics.nn.modules import``."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == IMPORT_ANCHOR:
            return node.end_lineno
    raise _missing(f"'from {IMPORT_ANCHOR} import (...)' (a top-level import)", where)


def _parse_model(tree, where):
    """The top-level ``parse_model`` function, whose module chain receives the branch."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "parse_model":
            return node
    raise _missing("'def parse_model(...)' (a top-level function)", where)


def _final_else(func, where):
    """The ``c2 = ch[f]`` statement that is the whole final ``else:`` of parse_model's ``if m ... elif m ...`` chain.

    Exactly one such chain must exist: zero means upstream restructured parse_model, more means we cannot tell
    which chain is the module chain, and guessing would put the branch where it never runs.
    """
    hits = []
    for node in ast.walk(func):
        if isinstance(node, ast.If) and node.orelse and not isinstance(node.orelse[0], ast.If):
            body = node.orelse
            if len(body) == 1 and isinstance(body[0], ast.Assign) and ast.unparse(body[0]) == ELSE_ANCHOR:
                hits.append(body[0])
    if len(hits) != 1:
        raise _missing(f"'else: {ELSE_ANCHOR}' (the end of the elif chain in parse_model; found {len(hits)})", where)
    return hits[0]


def _else_line(lines, stmt, where):
    """Index of the ``else:`` line that owns ``stmt`` (ast gives the body's line, not the keyword's)."""
    i = stmt.lineno - 2
    while i >= 0 and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        i -= 1
    if i < 0 or not re.match(r"\s*else\s*:", lines[i]):
        raise _missing(f"'else:' on its own line before '{ELSE_ANCHOR}' in parse_model", where)
    return i


def unpatch_tasks(text):
    """Remove every line a graft added (all carry ``# DySample graft``), restoring upstream's text byte for byte."""
    return "".join(line for line in _lines(text) if MARK not in line)


def patch_tasks(text, where=TASKS):
    """Return upstream's tasks.py text with the Addmodules import and parse_model branch added.

    Patching starts from ``unpatch_tasks(text)``, so an already grafted file comes out unchanged (idempotent) and a
    partly grafted or older-format graft is repaired.

    Args:
        text (str): Contents of the target's ``nn/tasks.py``.
        where (str | Path): File name used in error messages.

    Returns:
        (str): The patched text.

    Raises:
        GraftError: An anchor is missing or ambiguous, or the file already names a ``NAMES`` class unmarked.
    """
    clean = unpatch_tasks(text)
    try:
        tree = ast.parse(clean)
    except SyntaxError as e:
        raise GraftError(f"{where} does not parse as Python ({e}); nothing was written.") from e
    if found := FOREIGN_NAMES.search(clean):
        raise GraftError(
            f"{where} already mentions {found.group(1)} without the '{MARK}' marker (a hand-made edit?); "
            "graft onto a clean upstream copy. Nothing was written."
        )
    after = _import_anchor(tree, where)
    func = _parse_model(tree, where)
    lines = _lines(clean)
    if LOOKUP_ANCHOR not in "".join(lines[func.lineno - 1 : func.end_lineno]):
        raise _missing(f"'{LOOKUP_ANCHOR}' (parse_model's lookup of yaml module names)", where)
    stmt = _final_else(func, where)
    at = _else_line(lines, stmt, where)
    nl, indents = _newline(lines), (_indent(lines[at]), _indent(lines[stmt.lineno - 1]))
    branch = [indents[level] + text + nl for level, text in BRANCH_LINES]
    if not lines[after - 1].endswith("\n"):
        lines[after - 1] += nl
    out = [*lines[:after], IMPORT_LINE + nl, *lines[after:at], *branch, *lines[at:]]
    return "".join(out)


# Planning ----------------------------------------------------------------------------------------------------------
def _source_files(source):
    """This fork's files to copy: every ``Addmodules/*.py`` (others may add modules there) and the upsampler yamls."""
    mods = sorted((source / ADDMODULES).glob("*.py"))
    yamls = {pattern: sorted((source / YAML_DIR).glob(pattern)) for pattern in YAML_GLOBS}
    missing = [pattern for pattern, found in yamls.items() if not found]
    if not any(p.name == "__init__.py" for p in mods):
        missing.insert(0, "Addmodules/__init__.py")
    if missing:
        raise GraftError(f"this fork's files are missing under {source}: {', '.join(missing)}.")
    copies = [ADDMODULES / p.name for p in mods] + [YAML_DIR / p.name for found in yamls.values() for p in found]
    return [(rel, source / rel) for rel in copies]


def _absolute_import(node, package):
    """Absolute module names an import node inside ``package`` names (relative ones resolved); [] for other nodes."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if not node.level:
            return [node.module]
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        return [".".join(base + ([node.module] if node.module else []))]
    return []


def _check_module_imports(source, target):
    """Refuse Addmodules files that import ultralytics modules the target lacks.

    ``Addmodules/__init__.py`` imports every module in the folder and tasks.py imports Addmodules, so one such
    import would break ``import ultralytics`` in the target entirely; better to refuse up front.
    """
    package = "ultralytics.nn.modules.Addmodules"
    for path in sorted((source / ADDMODULES).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _absolute_import(node, package):
                if not name.startswith(f"{PACKAGE}.") or name.startswith(package):
                    continue
                rel = Path(*name.split(".")[1:])
                if not (target / rel.with_suffix(".py")).is_file() and not (target / rel / "__init__.py").is_file():
                    raise GraftError(
                        f"{ADDMODULES / path.name} imports {name}, which {target} does not have; "
                        "the grafted package would not import. Nothing was written."
                    )


def _check_folders(target):
    """The folders the copies go into must exist already: their absence means upstream changed its layout."""
    for rel, anchor in ((MODULES_DIR, "the nn/modules/ package"), (YAML_DIR, "the cfg/models/11/ folder")):
        if not (target / rel).is_dir():
            raise _missing(anchor, target / rel)


def plan_graft(target, source=ROOT):
    """Compute every file the graft would write, checking all anchors first; writes nothing.

    Args:
        target (Path): The upstream package folder (see ``resolve_target``).
        source (Path): This fork's package folder, whose Addmodules and yamls are copied.

    Returns:
        (list[FileChange]): Only the files whose contents would change; empty when already grafted.
    """
    _check_folders(target)
    _check_module_imports(source, target)
    copy = "copy of this fork's file"
    changes = [FileChange(rel, _read(target / rel), src.read_bytes(), copy) for rel, src in _source_files(source)]
    old = (target / TASKS).read_bytes()
    new = patch_tasks(old.decode("utf-8"), target / TASKS).encode("utf-8")
    why = f"import and parse_model branch for {', '.join(NAMES)}, marked '{MARK}'"
    changes.append(FileChange(TASKS, old, new, why))
    return [c for c in changes if c.old != c.new]


def plan_ungraft(target, source=ROOT):
    """Compute the deletions and the tasks.py restore that undo a graft; writes nothing."""
    changes = [FileChange(rel, _read(target / rel), None, "remove grafted file") for rel, _ in _source_files(source)]
    old = (target / TASKS).read_bytes()
    new = unpatch_tasks(old.decode("utf-8")).encode("utf-8")
    changes.append(FileChange(TASKS, old, new, "remove the lines marked '# DySample graft'"))
    return [c for c in changes if c.old != c.new]


# Writing -----------------------------------------------------------------------------------------------------------
def _write(path, data):
    """Replace ``path`` atomically with ``data`` (or delete it for None), keeping an existing file's mode."""
    if data is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.graft-tmp")
    try:
        tmp.write_bytes(data)
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _make_parents(folder, created):
    """Create ``folder`` and missing parents, recording each one made so a rollback can remove it."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for p in reversed(missing):
        p.mkdir()
        created.append(p)


def _remove_empty(folder):
    """Remove a folder left empty by an undo (its ``__pycache__`` counts as empty); keep it if anything else stays."""
    with contextlib.suppress(OSError):
        if all(p.name == "__pycache__" for p in folder.iterdir()):
            shutil.rmtree(folder / "__pycache__", ignore_errors=True)
            folder.rmdir()


def _rollback(target, done, created):
    """Put back every file written so far and remove the folders made, best effort, newest first."""
    for c in reversed(done):
        with contextlib.suppress(OSError):
            _write(target / c.rel, c.old)
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def apply_changes(target, changes):
    """Write all changes, or none: on an OSError everything already written is rolled back and GraftError raised."""
    done, created = [], []
    for c in changes:
        try:
            if c.new is not None:
                _make_parents((target / c.rel).parent, created)
            _write(target / c.rel, c.new)
        except OSError as e:
            _rollback(target, done, created)
            raise GraftError(f"writing {target / c.rel} failed ({e}); every change was rolled back.") from e
        done.append(c)
    if any(c.new is None for c in changes):
        _remove_empty(target / ADDMODULES)


# API ---------------------------------------------------------------------------------------------------------------
def graft(target, check=False, source=ROOT):
    """Apply this fork's DySample delta (DySample, CARAFE and their yamls) to an upstream ``ultralytics`` package.

    Args:
        target (str | Path): The upstream package folder holding ``nn/tasks.py`` (a site-packages folder that
            contains ``ultralytics/`` is accepted too).
        check (bool): Dry run: plan and report only.
        source (Path): This fork's package folder (tests point it at a prepared copy).

    Returns:
        (GraftReport): The changes made (or, with ``check``, to be made); empty when already applied.

    Raises:
        GraftError: A missing anchor, a bad target or a failed write; the target is then left as it was.
    """
    target = resolve_target(target)
    changes = plan_graft(target, Path(source))
    if not check:
        apply_changes(target, changes)
    return GraftReport(target, changes, check=check)


def ungraft(target, check=False, source=ROOT):
    """Remove a graft: the marked tasks.py lines, the copied Addmodules files and the upsampler yamls.

    Upstream files come back byte for byte, since the graft only ever adds whole marked lines and new files. A tree
    grafted by an older version (DySample only) is undone too: its lines carry the same marker, and copies it never
    made are simply absent.
    """
    target = resolve_target(target)
    changes = plan_ungraft(target, Path(source))
    if not check:
        apply_changes(target, changes)
    return GraftReport(target, changes, undo=True, check=check)


# Command line ------------------------------------------------------------------------------------------------------
def parse_args(tokens):
    """Parse ``target=PATH`` (or a bare PATH) plus ``check``/``undo`` flags, in yolo or ``--flag`` style.

    Returns:
        (dict | None): ``{'target', 'check', 'undo'}``, or None when help was asked for.
    """
    opts = {"target": None, "check": False, "undo": False}
    for token in tokens:
        key, eq, value = token.lstrip("-").partition("=")
        key = key.lower().replace("-", "_")
        if key in {"h", "help"}:
            return None
        if key in {"check", "dry_run", "undo"} and value.lower() in {"", "true", "1", "false", "0"}:
            opts["undo" if key == "undo" else "check"] = value.lower() not in {"false", "0"}
        elif key == "target" and eq and value:
            opts["target"] = value
        elif not eq and not token.startswith("-") and opts["target"] is None:
            opts["target"] = token
        else:
            raise GraftError(f"unknown graft argument '{token}'.\n{USAGE}")
    if not opts["target"]:
        raise GraftError(f"'target' is required: there is no default upstream to patch.\n{USAGE}")
    return opts


def run(tokens):
    """Run a graft (or undo) from command-line tokens and log the report; GraftError propagates to the caller."""
    opts = parse_args(tokens)
    if opts is None:
        LOGGER.info(USAGE)
        return None
    action = ungraft if opts["undo"] else graft
    report = action(opts["target"], check=opts["check"])
    LOGGER.info(str(report))
    if opts["check"] and report.diff():
        LOGGER.info(report.diff())
    elif not (opts["check"] or opts["undo"] or report.already_applied):
        LOGGER.info(VERIFY_HINT)
    return report


def main(argv=None):
    """Entry point of ``python -m ultralytics.utils.graft``; returns the exit status (1 on a refusal)."""
    try:
        run(sys.argv[1:] if argv is None else argv)
    except GraftError as e:
        LOGGER.error(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
