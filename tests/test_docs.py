"""The examples run: the doctests of the public modules and the Python blocks of the docs.

Every ```` ```python ```` block of a page in ``docs/`` runs, page by page in one namespace (a
page's blocks build on each other), in a temporary folder; blocks fenced ```` ```py ```` are
shown but not run. Examples are tiny (32² images, a few steps), so this stays within seconds
on two cores with one torch thread.
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MODULES = [
    "napari_dip.restore",
    "napari_dip.estimate",
    "napari_dip.samples",
    "napari_dip.psf",
    "napari_dip.anscombe",
    "napari_dip.batch",
    "napari_dip.options",
    "napari_dip.io",
    "napari_dip.cli",
    "napari_dip.cli.parser",
    "napari_dip.engine.device",
    "napari_dip.engine.fit",
    "napari_dip.engine.layers",
    "napari_dip.engine.noise",
    "napari_dip.engine.presets",
    "napari_dip.engine.priors",
    "napari_dip.engine.problem",
    "napari_dip.engine.stopping",
    "napari_dip.engine.stopping.discrepancy",
    "napari_dip.pipeline.fusion",
]
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = sorted(p for p in DOCS.rglob("*.md") if FENCE.search(p.read_text(encoding="utf-8")))


def python_blocks(text: str) -> list[str]:
    """The ```` ```python ```` blocks of a Markdown text, in order."""
    return [match.group(1) for match in FENCE.finditer(text)]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, one_torch_thread):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_page_runs(page, tmp_path, monkeypatch, one_torch_thread, capsys):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(python_blocks(page.read_text(encoding="utf-8")), 1):
        code = compile(block, f"{page.relative_to(ROOT)} (block {number})", "exec")
        exec(code, namespace)


def test_readme_python_compiles():
    """The README's tour is shown, not run (full-size runs); it must at least be Python that
    names functions that exist."""
    import napari_dip
    from napari_dip import psf, samples

    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks
    for block in blocks:
        compile(block, "README.md", "exec")
        for module, name in re.findall(r"\b(napari_dip|samples|psf)\.(\w+)\(", block):
            owner = {"napari_dip": napari_dip, "samples": samples, "psf": psf}[module]
            assert hasattr(owner, name), f"README calls {module}.{name}, which does not exist"


def _without_example(module: object) -> list[str]:
    """The public functions of ``module`` (its ``__all__``) whose docstring has no example."""
    import inspect

    names = getattr(module, "__all__", [])
    functions = [n for n in names if inspect.isfunction(getattr(module, n))]
    return [n for n in functions if ">>>" not in (getattr(module, n).__doc__ or "")]


def test_every_public_function_has_an_example():
    import napari_dip
    from napari_dip import anscombe, batch, cli, engine, io, options, psf, samples

    for module in (samples, psf, anscombe, batch, options, engine, io, cli):
        assert _without_example(module) == [], module.__name__
    assert _without_example(napari_dip) == []


def test_the_first_screen_screenshot_is_made(tmp_path):
    """docs/make_screenshot.py --first (the dock as it opens) runs under this display and
    writes a picture of the whole window, with the image and the dock drawn."""
    import os
    import subprocess
    import sys

    from PIL import Image

    if not os.environ.get("DISPLAY"):
        pytest.skip("needs an X display (pytest-xvfb provides one)")
    target = tmp_path / "first.png"
    script = ROOT / "docs" / "make_screenshot.py"
    done = subprocess.run(
        [sys.executable, str(script), "--first", str(target)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    picture = np.asarray(Image.open(target).convert("L"), dtype=np.float32)
    assert picture.shape == (900, 1280)
    canvas, dock = picture[300:600, 400:800], picture[50:420, 860:1270]
    assert canvas.std() > 40  # the noisy camera, not a black canvas
    assert dock.std() > 10  # the dock's controls drawn
