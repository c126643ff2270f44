"""Plugins live in plugins/<name>/ and import as vision_agents.plugins.<name>."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_plugin_folder_is_linked_into_the_package() -> None:
    plugins = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists())
    links = ROOT / "vision_agents" / "plugins"
    for name in plugins:
        link = links / name
        assert link.is_symlink(), f"vision_agents/plugins/{name} must link to plugins/{name}"
        assert os.path.realpath(link) == str((ROOT / "plugins" / name).resolve())


def test_every_link_points_at_a_plugin_folder() -> None:
    links = ROOT / "vision_agents" / "plugins"
    for link in links.iterdir():
        if link.is_symlink():
            assert (link / "__init__.py").exists(), f"{link} is a dangling plugin link"
