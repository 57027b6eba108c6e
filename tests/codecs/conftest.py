"""Every codec test runs against a fresh registry, so registrations, entry
point scans and plugin failures never leak from one test into another."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_plugins import FAKE_MODULES, write_fake_site

from codecpickle.codecs import _registry


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> _registry.Registry:
    """Replace the process-wide registry by an empty copy for one test."""
    registry = _registry.Registry()
    monkeypatch.setattr(_registry, "REGISTRY", registry)
    return registry


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory of fake plugin distributions, on ``sys.path`` for one test."""
    site = write_fake_site(tmp_path / "site-packages")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in FAKE_MODULES:
        sys.modules.pop(module, None)


@pytest.fixture
def shadow_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Like ``fake_site``, plus a plugin whose entry point is named ``zstd``."""
    site = write_fake_site(tmp_path / "site-packages", shadow=True)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in FAKE_MODULES:
        sys.modules.pop(module, None)
