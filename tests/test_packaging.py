"""Packaging: every package folder is listed in pyproject, and a plain (non-editable) install finds the built-in
domains and recipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"llava_adapt": "llava_adapt", "llava_adapt.domains": "domains", "llava_adapt.recipes": "recipes"}


def package_folders() -> set[str]:
    """Import names of every folder with an __init__.py under the three mapped roots."""
    names = set()
    for prefix, folder in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "template" in init.parts:
                continue
            relative = init.parent.relative_to(ROOT / folder).parts
            names.add(".".join([prefix, *relative]))
    return names


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == MAPPING
    missing = package_folders() - set(config["packages"])
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True, timeout=600, env={**os.environ, "TMPDIR": str(build)},
    )  # fmt: skip
    return next(out.glob("llava_adapt-*.whl"))


def test_the_wheel_ships_domains_recipes_prompts_and_the_scaffold(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    for domain in ("biomed", "general", "scienceqa"):
        assert f"llava_adapt/domains/{domain}/__init__.py" in names
        assert any(n.startswith(f"llava_adapt/domains/{domain}/prompts/") and n.endswith("system_message.txt")
                   for n in names), domain  # fmt: skip
        assert f"llava_adapt/recipes/{domain}.yaml" in names
    assert "llava_adapt/scaffold/template/pyproject.toml.tmpl" in names
    assert "llava_adapt/scaffold/template/__PACKAGE__/recipes/__NAME__.yaml" in names  # the recipe a plugin ships
    assert not any(n.startswith(("domains/", "recipes/", "tests/")) for n in names)


def test_a_plain_install_lists_the_built_in_domains_and_recipes(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(pip, check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}

    def cli(*args: str):
        out = subprocess.run([sys.executable, "-m", "llava_adapt", *args], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
        return json.loads(out.stdout)

    where = subprocess.run([sys.executable, "-c", "import llava_adapt; print(llava_adapt.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(site)), "the installed copy, not the source tree, must be imported"
    domains = {r["name"]: r for r in cli("domain", "ls", "--json")}
    for name in ("biomed", "scienceqa", "general"):
        assert domains[name]["package"] == "llava-adapt"
        assert domains[name]["status"] == "ok", domains[name]["error"]
    recipes = {r["name"]: r for r in cli("recipe", "ls", "--json")}
    assert {"biomed", "scienceqa", "general"} <= set(recipes)
    assert all(r["path"].startswith(str(site)) for r in recipes.values())
