"""Shared fixtures. Everything here runs offline on a CPU."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llava_adapt.registry import registry
from tests.plugins import install_plugin


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """A function that installs fake plugin distributions into a temporary folder on sys.path.

    The global registry is cleared before and after, and the fake modules are unloaded afterwards.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)
    registry.clear()

    def install(dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None, **kw) -> None:
        install_plugin(site, dist, entry_points, modules, **kw)
        importlib.invalidate_caches()
        registry.clear()

    yield install
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(site)):
            del sys.modules[name]
    registry.clear()


@pytest.fixture(scope="session")
def real_tokenizers() -> dict[str, Path]:
    """Folders of real tokenizers (LLaMA SentencePiece, Llama-3, Qwen2), from llama-cpp-python's sdist on PyPI,
    downloaded and converted once into a cache (see `tests/real_tokenizers.py`); skips when the index is out of
    reach."""
    from tests.real_tokenizers import Unavailable, prepare

    try:
        return prepare()
    except Unavailable as exc:
        pytest.skip(f"real tokenizers unavailable: {exc}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An integration test is a slow test too, so that the fast tier (`-m "not slow"`) leaves it out."""
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(pytest.mark.slow)
