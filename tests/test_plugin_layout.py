"""Plugins are namespace portions with their own source roots, and import as
``vision_agents.plugins.<name>`` from a checkout, an editable install and a wheel alike.

Each ``plugins/<name>/`` holds ``vision_agents/plugins/<name>/`` and a ``pyproject.toml`` of
its own; the root ``pyproject.toml`` lists every plugin root in four places. These tests keep
all of that in step, and build the wheels to see what a user would install.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if p.is_dir())


def _root() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _plugin_project(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / "plugins" / name / "pyproject.toml").read_text())


def _dist(name: str) -> str:
    return "vision-agents-plugins-" + name.replace("_", "-")


def _requirement_name(req: str) -> str:
    return re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower()


def _third_party(reqs: list[str], seen: frozenset[str] = frozenset()) -> set[str]:
    """A requirement list with our own distributions replaced by what they require."""
    root = _root()["project"]
    out: set[str] = set()
    for req in reqs:
        name = _requirement_name(req)
        if name == "vision-agents":
            extras = re.search(r"\[([^\]]*)\]", req)
            for extra in extras.group(1).split(",") if extras else []:
                if extra not in seen:
                    out |= _third_party(root["optional-dependencies"][extra], seen | {extra})
        elif name.startswith("vision-agents-plugins-"):
            plugin = name.removeprefix("vision-agents-plugins-").replace("-", "_")
            out |= _third_party(_plugin_project(plugin)["project"]["dependencies"], seen)
        else:
            out.add(req)
    return out


def test_there_are_plugins_and_no_symlinks_anywhere() -> None:
    assert {"gemini", "openai", "webrtc", "xai"} <= set(PLUGINS)
    listing = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    links = [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000")]
    assert links == [], f"symlinks in the repository: {links}"


@pytest.mark.parametrize("name", PLUGINS)
def test_each_plugin_is_a_namespace_portion_that_imports_from_its_own_root(name: str) -> None:
    source_root = ROOT / "plugins" / name
    package = source_root / "vision_agents" / "plugins" / name
    assert (package / "__init__.py").is_file(), f"{package} is not a package"
    assert (package / "py.typed").is_file(), f"{package} lacks py.typed"
    # Namespace levels have no __init__.py (PEP 420), or they would hide the other plugins.
    assert not (source_root / "vision_agents" / "__init__.py").exists()
    assert not (source_root / "vision_agents" / "plugins" / "__init__.py").exists()
    entries = sorted(p.name for p in source_root.iterdir() if p.name != "__pycache__")
    assert entries == ["pyproject.toml", "vision_agents"]
    spec = importlib.util.find_spec(f"vision_agents.plugins.{name}")
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve() == (package / "__init__.py").resolve()


@pytest.mark.parametrize("name", PLUGINS)
def test_each_plugin_project_matches_the_root_extra(name: str) -> None:
    project = _plugin_project(name)
    root = _root()
    assert project["project"]["name"] == _dist(name)
    assert project["project"]["version"] == root["project"]["version"]
    assert f"vision-agents=={root['project']['version']}" in project["project"]["dependencies"]
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["only-include"] == [f"vision_agents/plugins/{name}"]
    extra = root["project"]["optional-dependencies"][name.replace("_", "-")]
    assert _third_party(project["project"]["dependencies"]) == _third_party(extra), (
        f"plugins/{name}/pyproject.toml and the root [{name}] extra require different packages"
    )
    everything = root["project"]["optional-dependencies"]["all"]
    assert name.replace("_", "-") in everything[0] or name == "ultralytics"


def test_the_root_project_lists_every_plugin_root_in_each_place() -> None:
    root = _root()
    roots = [f"plugins/{name}" for name in PLUGINS]
    wheel = root["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["dev-mode-dirs"] == [".", *roots]
    assert wheel["only-include"] == ["vision_agents", *(f"{r}/vision_agents" for r in roots)]
    assert wheel["sources"] == {f"{r}/vision_agents": "vision_agents" for r in roots}
    assert root["tool"]["pytest"]["ini_options"]["pythonpath"] == [".", *roots]
    assert root["tool"]["mypy"]["mypy_path"] == [".", *roots]


def _build(project: Path, out: Path) -> zipfile.ZipFile:
    # hatchling is a dev dependency: the build backend of the root and of every plugin.
    script = f"from hatchling.build import build_wheel; print(build_wheel({str(out)!r}))"
    built = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    return zipfile.ZipFile(out / built)


def test_the_root_wheel_carries_core_and_every_plugin_with_their_files(tmp_path: Path) -> None:
    names = set(_build(ROOT, tmp_path).namelist())
    assert "vision_agents/__init__.py" in names
    assert "vision_agents/core/__init__.py" in names
    for name in PLUGINS:
        source = ROOT / "plugins" / name
        for file in (source / "vision_agents").rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts:
                assert file.relative_to(source).as_posix() in names
    assert "vision_agents/plugins/webrtc/static/index.html" in names
    assert not any(n.startswith("plugins/") for n in names)


def test_a_plugin_wheel_holds_only_its_namespace_portion(tmp_path: Path) -> None:
    names = _build(ROOT / "plugins" / "gemini", tmp_path).namelist()
    files = [n for n in names if ".dist-info/" not in n]
    assert files and all(n.startswith("vision_agents/plugins/gemini/") for n in files), files
    assert "vision_agents/plugins/gemini/realtime.py" in files
