"""Loading is safe, checked over the whole source tree (a new call that breaks a rule fails here): weights are written
as safetensors only, every `torch.load` is `weights_only=True`, and no code from a checkpoint is ever run
(`trust_remote_code` is never switched on; no recipe key can switch it on)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from llava_adapt.recipe.schema import Recipe

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "llava_adapt").rglob("*.py"), *(REPO / "domains").rglob("*.py")])


def _calls(name: str) -> list[tuple[str, ast.Call]]:
    """Every call whose function is `name` or ends with `.name`, as `(file:line, call)`."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    found.append((f"{path.relative_to(REPO)}:{node.lineno}", node))
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_torch_load_is_weights_only():
    loads = [(where, call) for where, call in _calls("load") if ast.unparse(call.func) == "torch.load"]
    assert loads, "the scan found no torch.load at all: it is not looking where the code is"
    unsafe = [
        where for where, call in loads if ast.unparse(_keyword(call, "weights_only") or ast.Constant(None)) != "True"
    ]
    assert unsafe == []


@pytest.mark.slow
def test_no_weights_are_written_with_pickle():
    # `training_args.bin` (the trainer's arguments, not weights) is what transformers' Trainer pickles into every
    # checkpoint itself; nothing else may be.
    pickled = [
        where
        for where, call in _calls("save")
        if ast.unparse(call.func) == "torch.save" and "TRAINING_ARGS_NAME" not in ast.unparse(call.args[1])
    ]
    unsafe = [
        where
        for where, call in _calls("save_pretrained")
        if ast.unparse(_keyword(call, "safe_serialization") or ast.Constant(True)) != "True"
    ]
    assert pickled == [] and unsafe == []


@pytest.mark.slow
def test_trust_remote_code_is_never_switched_on():
    switched = [where for name in ("from_pretrained", "AutoConfig", "pipeline") for where, call in _calls(name)
                if _keyword(call, "trust_remote_code") is not None]  # fmt: skip
    assert switched == []
    keys = {field for section in Recipe.model_fields.values() for field in _fields(section.annotation)}
    assert "trust_remote_code" not in keys


def _fields(annotation) -> set[str]:
    model_fields = getattr(annotation, "model_fields", None)
    return set(model_fields) if model_fields else set()


def test_a_pickled_checkpoint_with_code_is_refused(tmp_path: Path):
    """What `weights_only=True` buys: a `.bin` whose pickle would run code does not load."""
    from llava_adapt.model.original import load_projector

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'ran.txt')!r}, 'w').write('ran')",))

    torch.save({"model.mm_projector.0.weight": Payload()}, tmp_path / "mm_projector.bin")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_projector(str(tmp_path / "mm_projector.bin"))
    assert not (tmp_path / "ran.txt").exists()
