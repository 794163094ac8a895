"""The graft rebase aid: apply this fork's DySample delta (DySample, CARAFE, their yamls) to an upstream Ultralytics.

Fast tests run on a fake minimal upstream tree. The real check installs upstream 8.4.190 with ``pip --target`` into
a cache folder (never into this environment: both packages are called ``ultralytics``), grafts a copy, and compares
parameter count and outputs of upstream's DetectionModel with this fork's, with the same weights, and builds every
copied yaml there (CARAFE included) against this fork's build; it skips cleanly when pip cannot reach the index.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from ultralytics.cli import entrypoint
from ultralytics.utils import ROOT
from ultralytics.utils import graft as g
from ultralytics.utils.graft import GraftError, graft, patch_tasks, ungraft

UPSTREAM_VERSION = "8.4.190"
DYSAMPLE_N_PARAMS = 2_636_432  # yolo11n-dysample, upstream's summary line and this fork's alike
IMPORT_LINE = "from ultralytics.nn.modules.Addmodules import DySample, Dy_Sample, CARAFE  # DySample graft"
BRANCH_START = "        elif m in {DySample, Dy_Sample, CARAFE}:"
UPSAMPLER_YAMLS = ("yolo11-dysample*.yaml", "yolo11-carafe*.yaml", "yolo11-bilinear*.yaml")  # copied by the graft
FAKE_TASKS = '''\
"""A minimal stand-in for upstream's nn/tasks.py with the anchors the graft relies on."""

import contextlib

from ultralytics.nn.modules import (
    Concat,
    Conv,
)
from ultralytics.utils import LOGGER


def parse_model(d, ch, verbose=True):
    """Build (module, args, c2) per row like upstream's parse_model, without scaling."""
    ch, rows = [ch], []
    for i, (f, n, m, args) in enumerate(d["backbone"] + d["head"]):
        m = getattr(contextlib, m[3:]) if m.startswith("nn.") else globals()[m]  # get module
        if m is Conv:
            c1, c2 = ch[f], args[0]
            args = [c1, c2, *args[1:]]
        elif m is Concat:
            c2 = sum(ch[x] for x in f)
        else:
            c2 = ch[f]

        rows.append((m, args, c2))
        if i == 0:
            ch = []
        ch.append(c2)
    return rows
'''


# Helpers --------------------------------------------------------------------------------------------------------------
def make_fake_upstream(root, tasks=FAKE_TASKS):
    """Write the few files of an upstream package the graft touches or checks, and return the package folder."""
    pkg = root / "ultralytics"
    for folder in ("nn/modules", "cfg/models/11", "utils"):
        (pkg / folder).mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "9.9.9"\n')
    (pkg / "nn" / "__init__.py").write_text("")
    (pkg / "nn" / "modules" / "__init__.py").write_text("from .conv import Concat, Conv\n")
    (pkg / "nn" / "modules" / "conv.py").write_text("class Conv: ...\n\n\nclass Concat: ...\n")
    (pkg / "utils" / "__init__.py").write_text("LOGGER = None\n")
    (pkg / "cfg" / "models" / "11" / "yolo11.yaml").write_text("nc: 80\n")
    (pkg / "nn" / "tasks.py").write_text(tasks)
    return pkg


def tree_hashes(root):
    """Every file and folder under ``root`` with a content hash, to prove a refusal wrote nothing at all."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def exec_tasks(path):
    """Execute a (patched) fake tasks.py; its imports resolve against this fork, which has DySample."""
    namespace = {"__name__": "fake_tasks"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


@pytest.fixture
def fake(tmp_path):
    return make_fake_upstream(tmp_path)


# Fake upstream --------------------------------------------------------------------------------------------------------
def test_graft_copies_and_patches(fake):
    report = graft(fake)
    assert not report.already_applied and "DySample graft onto" in str(report) and "9.9.9" in str(report)
    sources = sorted((ROOT / "nn/modules/Addmodules").glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "DySample.py"}
    for src in sources:
        assert (fake / "nn/modules/Addmodules" / src.name).read_bytes() == src.read_bytes()
    yamls = sorted(p for pattern in UPSAMPLER_YAMLS for p in (ROOT / "cfg/models/11").glob(pattern))
    assert len(yamls) >= 6 and {"yolo11-carafe.yaml", "yolo11-bilinear.yaml"} <= {p.name for p in yamls}
    for src in yamls:
        assert (fake / "cfg/models/11" / src.name).read_bytes() == src.read_bytes()
    copied = sorted(p.name for p in (fake / "cfg/models/11").glob("*.yaml"))
    assert copied == sorted(["yolo11.yaml", *(p.name for p in yamls)])  # the named upsampler yamls, nothing else
    lines = (fake / "nn/tasks.py").read_text().splitlines()
    imp = lines.index(IMPORT_LINE)
    assert lines[imp - 1] == ")" and lines[imp + 1].startswith("from ultralytics.utils import")
    branch = next(i for i, s in enumerate(lines) if s.startswith(BRANCH_START))
    assert lines[branch + 1 : branch + 4] == [
        "            c2 = ch[f]  # DySample graft",
        "            args = [c2, *args]  # DySample graft",
        "        else:",
    ]
    assert sum("# DySample graft" in s for s in lines) == 4


def test_grafted_branch_fills_channels(fake):
    """The patched parse_model really prepends the input channels to DySample's and CARAFE's yaml args (c2 = c1)."""
    graft(fake)
    ns = exec_tasks(fake / "nn/tasks.py")
    head = [[-1, 1, "Dy_Sample", [2, "lp"]], [[-1, 0], 1, "Concat", [1]], [-1, 1, "CARAFE", [2, 3]]]
    rows = ns["parse_model"]({"backbone": [[-1, 1, "Conv", [48, 3, 2]]], "head": head}, 3)
    assert rows[1] == (ns["DySample"], [48, 2, "lp"], 48) and rows[2][2] == 96
    assert rows[3] == (ns["CARAFE"], [96, 2, 3], 96)
    assert ns["DySample"](*rows[1][1]).offset.in_channels == 48
    carafe = ns["CARAFE"](*rows[3][1])
    assert carafe.channel_compressor.in_channels == 96 and carafe.k_up == 3


def test_second_graft_is_a_noop(fake):
    graft(fake)
    before = tree_hashes(fake)
    report = graft(fake)
    assert report.already_applied and "already applied" in str(report)
    assert tree_hashes(fake) == before


def test_check_mode_reports_and_writes_nothing(fake):
    before = tree_hashes(fake)
    report = graft(fake, check=True)
    assert tree_hashes(fake) == before
    text = str(report)
    assert text.startswith("Check:") and "would create nn/modules/Addmodules/DySample.py" in text
    assert "would update nn/tasks.py" in text
    assert "would create cfg/models/11/yolo11-carafe.yaml" in text
    assert f"+{IMPORT_LINE}" in report.diff()


def test_partial_graft_is_repaired(fake):
    """A graft whose branch got lost (say, in a manual merge) is completed, not duplicated."""
    graft(fake)
    full = (fake / "nn/tasks.py").read_text()
    lines = full.splitlines(True)
    (fake / "nn/tasks.py").write_text("".join(s for s in lines if "c2 = ch[f]  # DySample graft" not in s))
    assert [c.rel.as_posix() for c in graft(fake).changes] == ["nn/tasks.py"]
    assert (fake / "nn/tasks.py").read_text() == full


def test_crlf_file_stays_crlf(tmp_path):
    pkg = make_fake_upstream(tmp_path)
    (pkg / "nn/tasks.py").write_bytes(FAKE_TASKS.replace("\n", "\r\n").encode())
    graft(pkg)
    data = (pkg / "nn/tasks.py").read_bytes()
    assert b"# DySample graft\r\n" in data and data.count(b"\n") == data.count(b"\r\n")


def test_undo_restores_upstream_byte_for_byte(fake):
    before = tree_hashes(fake)
    graft(fake)
    (fake / "nn/modules/Addmodules/__pycache__").mkdir()  # as left by importing the grafted package
    report = ungraft(fake)
    assert "Undo of the DySample graft" in str(report) and not report.already_applied
    assert tree_hashes(fake) == before
    assert ungraft(fake).already_applied


def _old_graft(pkg):
    """Turn a graft into what the previous, DySample-only version left: no CARAFE wiring, no carafe/bilinear yamls."""
    graft(pkg)
    tasks = pkg / "nn/tasks.py"
    old = tasks.read_text().replace("DySample, Dy_Sample, CARAFE", "DySample, Dy_Sample")
    assert "CARAFE" not in old and old.count("DySample, Dy_Sample") == 2
    tasks.write_text(old)
    for name in ("yolo11-carafe.yaml", "yolo11-bilinear.yaml"):
        (pkg / "cfg/models/11" / name).unlink()


def test_graft_upgrades_a_dysample_only_graft(fake):
    """Grafting over the previous version's graft adds CARAFE to the same marked lines and the missing yamls."""
    graft(fake)
    full = tree_hashes(fake)
    _old_graft(fake)
    changed = sorted(c.rel.as_posix() for c in graft(fake).changes)
    assert changed == ["cfg/models/11/yolo11-bilinear.yaml", "cfg/models/11/yolo11-carafe.yaml", "nn/tasks.py"]
    assert tree_hashes(fake) == full


def test_undo_of_a_dysample_only_graft(fake):
    before = tree_hashes(fake)
    _old_graft(fake)
    ungraft(fake)
    assert tree_hashes(fake) == before


_BROKEN = [
    ("globals()[m]  # get module", "MODULES[m]", "'globals()[m]'"),
    ("        else:\n            c2 = ch[f]\n", "", "'else: c2 = ch[f]'"),
    ("from ultralytics.nn.modules import (", "from ultralytics.nn.blocks import (", "'from ultralytics.nn.modules"),
    ("def parse_model(", "def build_layers(", "'def parse_model(...)'"),
]


@pytest.mark.parametrize("old, new, anchor", _BROKEN, ids=["lookup", "else", "import", "parse_model"])
def test_missing_anchor_refuses_and_writes_nothing(tmp_path, old, new, anchor):
    assert old in FAKE_TASKS
    pkg = make_fake_upstream(tmp_path, FAKE_TASKS.replace(old, new))
    before = tree_hashes(tmp_path)
    with pytest.raises(GraftError) as e:
        graft(pkg)
    assert anchor in str(e.value) and str(pkg / "nn" / "tasks.py") in str(e.value)
    assert "Nothing was written" in str(e.value)
    assert tree_hashes(tmp_path) == before


def test_missing_folder_refuses_and_writes_nothing(fake, tmp_path):
    shutil.rmtree(fake / "cfg/models/11")
    before = tree_hashes(tmp_path)
    with pytest.raises(GraftError, match=r"cfg/models/11/ folder not found in .*cfg[/\\]models[/\\]11"):
        graft(fake)
    assert tree_hashes(tmp_path) == before


def test_two_else_chains_are_ambiguous(tmp_path):
    """Two candidate chains mean we cannot tell which is the module chain, so refuse rather than guess."""
    extra = "        if verbose:\n            c2 = 1\n        else:\n            c2 = ch[f]\n"
    pkg = make_fake_upstream(tmp_path, FAKE_TASKS.replace("        rows.append", extra + "        rows.append"))
    with pytest.raises(GraftError, match="found 2"):
        graft(pkg)


@pytest.mark.parametrize("name", ["DySample", "CARAFE"])
def test_hand_edited_module_is_refused(tmp_path, name):
    pkg = make_fake_upstream(tmp_path, FAKE_TASKS.replace("import contextlib\n", f"import contextlib  # {name}\n"))
    before = tree_hashes(tmp_path)
    with pytest.raises(GraftError, match=f"already mentions {name} without the '# DySample graft' marker"):
        graft(pkg)
    assert tree_hashes(tmp_path) == before


def test_write_failure_rolls_back(fake, tmp_path, monkeypatch):
    """A write that fails half-way (disk full, permissions) undoes the files and folders already written."""
    before, real_write, calls = tree_hashes(tmp_path), g._write, []

    def flaky(path, data):
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(g, "_write", flaky)
    with pytest.raises(GraftError, match="No space left on device.*rolled back"):
        graft(fake)
    assert len(calls) > 4 and tree_hashes(tmp_path) == before  # the rollback rewrote what it had written


def test_addmodule_importing_a_missing_upstream_module_is_refused(fake, tmp_path):
    """A module that imports fork-only code would break ``import ultralytics`` in the grafted package."""
    source = tmp_path / "fork"
    shutil.copytree(ROOT / "nn/modules/Addmodules", source / "nn/modules/Addmodules")
    shutil.copytree(ROOT / "cfg/models/11", source / "cfg/models/11")
    (source / "nn/modules/Addmodules/Extra.py").write_text("from ultralytics.utils.fork_only import helper\n")
    with pytest.raises(GraftError, match=r"Extra.py imports ultralytics.utils.fork_only"):
        graft(fake, source=source)
    (source / "nn/modules/Addmodules/Extra.py").write_text("from ..conv import Conv\nfrom .DySample import DySample\n")
    graft(fake, source=source)
    assert (fake / "nn/modules/Addmodules/Extra.py").is_file()  # every *.py is copied, not a fixed list


def test_missing_fork_yaml_refuses_and_writes_nothing(fake, tmp_path):
    """Every yaml pattern must match in this fork: a missing CARAFE yaml means a broken install, not 'copy less'."""
    source = tmp_path / "fork"
    shutil.copytree(ROOT / "nn/modules/Addmodules", source / "nn/modules/Addmodules")
    shutil.copytree(ROOT / "cfg/models/11", source / "cfg/models/11")
    (source / "cfg/models/11/yolo11-carafe.yaml").unlink()
    before = tree_hashes(fake)
    with pytest.raises(GraftError, match=r"files are missing under .*: yolo11-carafe\*\.yaml\.$"):
        graft(fake, source=source)
    assert tree_hashes(fake) == before


def test_target_resolution(fake, tmp_path):
    assert g.resolve_target(tmp_path) == fake.resolve()  # a site-packages folder is accepted too
    with pytest.raises(GraftError, match="is this fork itself"):
        graft(ROOT)
    with pytest.raises(GraftError, match="not an ultralytics package folder"):
        graft(tmp_path / "nowhere")


def test_patch_tasks_is_pure_and_idempotent():
    once = patch_tasks(FAKE_TASKS)
    assert patch_tasks(once) == once and g.unpatch_tasks(once) == FAKE_TASKS


# Command line ---------------------------------------------------------------------------------------------------------
def test_yolo_graft_command(fake, ulogs):
    before = tree_hashes(fake)
    entrypoint(f"yolo graft target={fake} check")
    assert tree_hashes(fake) == before and any("would create" in m for m in ulogs)
    entrypoint(f"yolo graft target={fake}")
    assert (fake / "nn/modules/Addmodules/DySample.py").is_file()
    entrypoint(f"yolo graft target={fake}")
    assert "already applied" in ulogs[-1]
    entrypoint(f"yolo graft target={fake} undo")
    assert tree_hashes(fake) == before


@pytest.mark.parametrize("args, expected", [("graft", "'target' is required"), ("graft target=/x bogus", "bogus")])
def test_yolo_graft_usage_errors_exit_1(args, expected, ulogs):
    with pytest.raises(SystemExit) as e:
        entrypoint(args)
    assert e.value.code == 1 and expected in ulogs[-1] and "usage: yolo graft target=" in ulogs[-1]


def test_yolo_graft_refusal_exits_1(tmp_path, ulogs):
    pkg = make_fake_upstream(tmp_path, FAKE_TASKS.replace("globals()[m]", "MODULES[m]"))
    with pytest.raises(SystemExit) as e:
        entrypoint(f"graft target={pkg}")
    assert e.value.code == 1 and "'globals()[m]'" in ulogs[-1]


def test_module_entry_point_subprocess(fake):
    cmd = [sys.executable, "-m", "ultralytics.utils.graft", str(fake), "--check"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT.parent)
    assert out.returncode == 0 and "would update nn/tasks.py" in out.stdout
    out = subprocess.run(cmd[:3], capture_output=True, text=True, cwd=ROOT.parent)
    assert out.returncode == 1 and "usage:" in out.stdout + out.stderr


# Real upstream --------------------------------------------------------------------------------------------------------
CACHE = Path(tempfile.gettempdir()) / "ultralytics-graft-upstream" / UPSTREAM_VERSION
PIP_NAMES = {"thop": "ultralytics-thop", "cpuinfo": "py-cpuinfo", "PIL": "pillow", "yaml": "pyyaml"}


def _pip(*args, timeout):
    """Run pip in a subprocess; a short network timeout and no retries, so an offline machine fails in seconds."""
    cmd = [sys.executable, "-m", "pip", *args, "--timeout", "5", "--retries", "0", "--disable-pip-version-check"]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _why(out):
    """The last line pip wrote, or 'timed out', for a one-line skip reason."""
    return out.stderr.strip().splitlines()[-1] if out and out.stderr.strip() else "timed out"


def _download_and_install():
    """Download the upstream wheel (this is the network probe) and install it with --target into the cache."""
    wheels, site = CACHE / "wheels", CACHE / "site"
    spec = f"ultralytics=={UPSTREAM_VERSION}"
    if not list(wheels.glob(f"ultralytics-{UPSTREAM_VERSION}-*.whl")):
        out = _pip("download", "--no-deps", "--only-binary=:all:", "-d", str(wheels), spec, timeout=120)
        if out is None or out.returncode:
            pytest.skip(f"cannot download {spec} (offline?): {_why(out)}")
    tmp = CACHE / f"site.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    args = ("--no-deps", "--no-index", "--no-compile", "--find-links", str(wheels), "--target", str(tmp), spec)
    out = _pip("install", *args, timeout=120)
    if out is None or out.returncode:
        pytest.skip(f"cannot install {spec} with --target: {_why(out)}")
    shutil.rmtree(site, ignore_errors=True)
    tmp.rename(site)


@pytest.fixture(scope="session")
def upstream_site():
    """A pristine upstream install (a folder holding ``ultralytics/``), cached under $TMPDIR across sessions."""
    if not (CACHE / "site" / "ultralytics" / "nn" / "tasks.py").is_file():
        _download_and_install()
    return CACHE / "site"


@pytest.fixture
def grafted_upstream(upstream_site, tmp_path):
    """A grafted copy of the cached upstream, so the cache itself is never modified."""
    site = tmp_path / "up"
    shutil.copytree(upstream_site, site)
    report = graft(site / "ultralytics")
    rels = {c.rel.as_posix() for c in report.changes}
    assert rels >= {"nn/tasks.py", "nn/modules/Addmodules/DySample.py", "nn/modules/Addmodules/CARAFE.py"}
    assert IMPORT_LINE in (site / "ultralytics/nn/tasks.py").read_text().splitlines()
    return site


def test_real_upstream_anchors_idempotence_and_undo(upstream_site, tmp_path):
    pkg = shutil.copytree(upstream_site / "ultralytics", tmp_path / "ultralytics")
    before = tree_hashes(pkg)
    assert f"ultralytics {UPSTREAM_VERSION}" in str(graft(pkg, check=True))
    graft(pkg)
    assert graft(pkg).already_applied
    ungraft(pkg)
    assert tree_hashes(pkg) == before


UPSTREAM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    import ultralytics
    from ultralytics.nn.tasks import DetectionModel

    site, weights, image, out = sys.argv[1:5]
    assert ultralytics.__file__.startswith(site), ultralytics.__file__
    model = DetectionModel("yolo11n-dysample.yaml", verbose=False)
    model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    with torch.no_grad():
        y = model.eval()(torch.load(image, weights_only=True))
    torch.save(y[0] if isinstance(y, (tuple, list)) else y, out)
    print(json.dumps({"version": ultralytics.__version__, "params": sum(p.numel() for p in model.parameters())}))
    """
)


def _fork_model_and_inputs(tmp_path):
    """This fork's yolo11n-dysample with fixed, non-trivial weights, plus a fixed input, both saved for upstream.

    DySample offsets are made large enough to really move the samples, and class scores are spread over (0, 1), so
    that comparing the outputs tests something.
    """
    import torch

    from ultralytics.nn.modules.Addmodules import DySample
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolo11n-dysample.yaml", verbose=False).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, DySample):
                m.offset.weight.normal_(0, 0.05, generator=gen)  # offsets of a pixel or so, not ~0
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
        for branch in model.model[-1].cv3:
            branch[-1].bias.normal_(0, 2, generator=gen)  # class scores spread over (0, 1), not all ~1e-5
    x = torch.rand(2, 3, 128, 160, generator=gen)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.save(x, tmp_path / "image.pt")
    return model, x


def _run_upstream(site, tmp_path, script, *args):
    """Run ``script`` with only the grafted upstream on the path; install missing pure deps to a side dir.

    The script gets ``site`` and then ``args`` as ``sys.argv[1:]``, and prints one JSON line last, returned parsed.
    """
    deps = CACHE / "deps"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(deps)]), "YOLO_OFFLINE": "1"}
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "cfg"), PYTHONDONTWRITEBYTECODE="1")
    for _ in range(6):
        cmd = [sys.executable, "-c", script, str(site), *map(str, args)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
        missing = re.search(r"No module named '([\w]+)", out.stderr)
        if out.returncode == 0 or not missing:
            break
        name = PIP_NAMES.get(missing.group(1), missing.group(1))
        if (pip := _pip("install", "--no-deps", "--target", str(deps), name, timeout=120)) is None or pip.returncode:
            pytest.skip(f"upstream needs {name}, which cannot be installed here")
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_real_upstream_parity(grafted_upstream, tmp_path):
    """Grafted upstream builds yolo11n-dysample with the same parameters and, given the same weights, outputs."""
    import torch

    model, x = _fork_model_and_inputs(tmp_path)
    files = (tmp_path / "weights.pt", tmp_path / "image.pt", tmp_path / "upstream_out.pt")
    info = _run_upstream(grafted_upstream, tmp_path, UPSTREAM_SCRIPT, *files)
    assert info == {"version": UPSTREAM_VERSION, "params": DYSAMPLE_N_PARAMS}
    assert sum(p.numel() for p in model.parameters()) == DYSAMPLE_N_PARAMS
    with torch.no_grad():
        ours = model(x)[0]
    theirs = torch.load(tmp_path / "upstream_out.pt", weights_only=True)
    assert theirs.shape == ours.shape == (2, 84, 420)
    assert (theirs[:, 4:] - ours[:, 4:]).abs().max() < 1e-4  # class scores
    torch.testing.assert_close(theirs[:, :4], ours[:, :4], rtol=1e-5, atol=1e-4)  # boxes in pixels


BUILD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    import ultralytics
    from ultralytics.nn.tasks import DetectionModel

    site, folder, *names = sys.argv[1:]
    assert ultralytics.__file__.startswith(site), ultralytics.__file__
    built = {}
    for name in names:
        model = DetectionModel(name, verbose=False)
        model.load_state_dict(torch.load(f"{folder}/{name}.pt", weights_only=True), strict=True)
        upsamplers = [type(model.model[i]).__name__ for i in (11, 14)]
        built[name] = {"params": sum(p.numel() for p in model.parameters()), "upsamplers": upsamplers}
    print(json.dumps(built))
    """
)


def test_real_upstream_builds_every_copied_yaml(grafted_upstream, tmp_path):
    """Each upsampler yaml the graft copies (CARAFE, bilinear, the DySample variants) builds in the grafted upstream.

    Built at scale n from the copied file, it must have this fork's parameter count, the expected upsampler class at
    layers 11 and 14, and load this fork's state dict with ``strict=True`` (same layer layout and names).
    """
    import torch

    from ultralytics.nn.tasks import DetectionModel

    copied = sorted(p.name for pattern in UPSAMPLER_YAMLS for p in (ROOT / "cfg/models/11").glob(pattern))
    names = [name.replace("yolo11-", "yolo11n-") for name in copied]
    assert {"yolo11n-carafe.yaml", "yolo11n-bilinear.yaml", "yolo11n-dysample.yaml"} <= set(names)
    ours = {}
    for name in names:
        model = DetectionModel(name, verbose=False)
        torch.save(model.state_dict(), tmp_path / f"{name}.pt")
        upsamplers = [type(model.model[i]).__name__ for i in (11, 14)]
        ours[name] = {"params": sum(p.numel() for p in model.parameters()), "upsamplers": upsamplers}
    assert ours["yolo11n-carafe.yaml"] == {"params": 2_764_184, "upsamplers": ["CARAFE", "CARAFE"]}
    assert ours["yolo11n-bilinear.yaml"]["upsamplers"] == ["Upsample", "Upsample"]
    assert _run_upstream(grafted_upstream, tmp_path, BUILD_SCRIPT, tmp_path, *names) == ours
