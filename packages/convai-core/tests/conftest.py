"""Fixtures shared by convai-core's tests."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Create installed-looking distributions (dist-info + module) on a temporary sys.path entry.

    ``make(dist, module_source, *, version="1.0", ep_name=None, module=None)`` writes
    ``<module>.py`` and ``<dist>-<version>.dist-info`` with an entry point in group ``convai``.
    Plugins are reloaded from scratch after the test.
    """
    from convai_core import plugins

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(
        dist: str,
        module_source: str,
        *,
        version: str = "1.0",
        ep_name: str | None = None,
        module: str | None = None,
    ) -> Path:
        module = module or dist.replace("-", "_")
        ep_name = ep_name or module
        (site / f"{module}.py").write_text(textwrap.dedent(module_source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[convai]\n{ep_name} = {module}\n")
        return site

    yield make
    monkeypatch.undo()  # drop the fake site folder before reloading the real plugins
    for name in list(sys.modules):
        if name.startswith("fakeplug"):
            del sys.modules[name]
    plugins.load_plugins(reload=True)
