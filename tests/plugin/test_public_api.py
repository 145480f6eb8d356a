"""`llava_adapt.plugin` is the whole API a domain plugin uses: it exports what plugins need, the built-in plugins
(and the scaffold's template) import nothing else from llava_adapt, and the contract checks `Domain.extras`."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

import llava_adapt.plugin as plugin
from llava_adapt.domain import DomainContractError
from llava_adapt.registry import registry

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("llava_adapt.plugin", "llava_adapt.domains")  # the public API, and a built-in plugin's own package


def test_everything_in___all___is_importable_and_listed_once():
    assert len(plugin.__all__) == len(set(plugin.__all__))
    missing = [name for name in plugin.__all__ if not hasattr(plugin, name)]
    assert missing == []
    for name in ("Domain", "Source", "Benchmark", "Judge", "SourceContext", "NoArgs", "CaptionRecord", "VQAItem",
                 "Skip", "read_jsonl", "write_jsonl", "atomic_path", "normalize_answer", "closed_accuracy",
                 "DataError", "MetricSpec"):  # fmt: skip
        assert name in plugin.__all__


def test_data_error_is_an_input_error_and_a_value_error():
    from llava_adapt.errors import EXIT_INPUT, InputError, user_error

    error = plugin.DataError("captions.jsonl: no such column 'text'")
    assert isinstance(error, InputError) and isinstance(error, ValueError)
    assert user_error(error) is error and error.exit_code == EXIT_INPUT


def _llava_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "llava_adapt" or name.startswith("llava_adapt.")]


def _outside_the_api(path: Path, source: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: {name}" for line, name in _llava_imports(ast.parse(source))
            if not any(name == ok or name.startswith(ok + ".") for ok in ALLOWED)]  # fmt: skip


def test_built_in_plugins_import_only_the_public_api():
    files = sorted((ROOT / "domains").rglob("*.py"))
    assert len(files) > 30
    offending = [line for path in files for line in _outside_the_api(path, path.read_text(encoding="utf-8"))]
    assert offending == []


def test_the_scaffold_template_imports_only_the_public_api():
    files = sorted((ROOT / "llava_adapt" / "scaffold" / "template").rglob("*.py.tmpl"))
    assert len(files) == 2
    offending = []
    for path in files:
        source = path.read_text(encoding="utf-8").replace("__PACKAGE__", "llava_adapt_x").replace("__NAME__", "x")
        offending += _outside_the_api(path, source)
    assert offending == []


def test_the_import_check_catches_an_internal_import(tmp_path: Path):
    source = "from llava_adapt.plugin import Domain\nimport llava_adapt.run.atomic\nfrom llava_adapt import errors\n"
    assert [name for _, name in _llava_imports(ast.parse(source))] == [
        "llava_adapt.plugin", "llava_adapt.run.atomic", "llava_adapt"]  # fmt: skip
    assert len(_outside_the_api(ROOT / "x.py", source)) == 2


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"patient_image": ("dicom/*",)}, "unknown key 'patient_image'. Did you mean 'patient_images'?"),
        ({"hub_datasets": "org/data"}, "extras['hub_datasets'] must be a list or tuple of strings"),
        ({"patient_images": ("dicom/*", 3)}, "extras['patient_images'] must be a list or tuple of strings"),
    ],
)
def test_the_contract_refuses_unknown_extras_keys_and_values_that_are_not_strings(extras, message):
    biomed = registry.get("biomed")
    with pytest.raises(DomainContractError, match=re.escape(message)):
        plugin.check_domain(dataclasses.replace(biomed, extras=extras), "biomed-test")
    ok = dataclasses.replace(biomed, extras={plugin.HUB_DATASETS: ["org/data"], plugin.PATIENT_IMAGES: ("a/*",)})
    assert plugin.check_domain(ok, "biomed-test") is ok
