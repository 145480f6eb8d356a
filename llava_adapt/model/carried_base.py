"""An adapter folder that carries its base model, so that a run directory loads wherever it is moved or copied.

transformers' `AutoModelForImageTextToText.from_pretrained(adapter_dir)` (with PEFT installed) loads the base model
that `adapter_config.json`'s `base_model_name_or_path` names, then applies the adapter. After LoRA on a local base
(`align/`, `instruct/base/`) that is an absolute path, which breaks once the run directory moves; a relative path
would be read against the working directory, not the adapter folder. But when the adapter folder itself holds a
`config.json`, transformers loads the base weights from the adapter folder instead (`maybe_load_adapters` /
`_BaseAutoModelClass.from_pretrained`: "local models with embedded adapters will load from the local base model").
So after training, the base's config and weight files are linked into the adapter folder with *relative* symbolic
links (`instruct/model.safetensors -> ../align/model.safetensors`): no disk space, still valid after `mv` or
`cp -r` of the whole run directory, and `shutil.copytree` (or `cp -rL`) copies the files they point at.

Only the stdlib is imported here, so that the Hub publishing code can tell carried files from the adapter's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
# The files of a base model an adapter folder carries (safetensors shards `model-*-of-*.safetensors` too).
BASE_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")


def base_model_files(folder: Path) -> list[Path]:
    """The config and weight files of the full model in `folder` (`BASE_MODEL_FILES` and safetensors shards)."""
    names = {*BASE_MODEL_FILES, *(p.name for p in folder.glob("model-*-of-*.safetensors"))}
    return sorted(folder / name for name in names if (folder / name).is_file())


def embed_base(adapter_dir: Path, base_dir: Path) -> None:
    """Link the config and weight files of the full model in `base_dir` into the adapter folder `adapter_dir`, with
    links relative to the adapter folder (replacing links or files of the same names).

    Args:
        adapter_dir (`Path`): the folder holding `adapter_config.json`.
        base_dir (`Path`): the full model the adapter was trained on (`align/`, `instruct/base/`, ...).
    """
    for source in base_model_files(base_dir):
        link = adapter_dir / source.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(source.resolve(), adapter_dir.resolve()))


def carry_base(adapter_dir: str | Path) -> bool:
    """After an adapter was saved into `adapter_dir`: link the local base model its `base_model_name_or_path` names
    into it (`embed_base`). Nothing is done for a full model, or for a base that is a Hub id (it loads anywhere).

    Returns:
        Whether the base was linked in.
    """
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        return False
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base or not (Path(base).expanduser() / "config.json").is_file():
        return False
    embed_base(adapter_dir, Path(base).expanduser())
    return True


def carried_files(folder: Path) -> set[Path]:
    """The base-model files an adapter folder carries (empty for a folder that is no adapter)."""
    return set(base_model_files(folder)) if (folder / ADAPTER_CONFIG).is_file() else set()
