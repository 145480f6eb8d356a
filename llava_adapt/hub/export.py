"""Merge a run's trained model into a full model that stock transformers loads (and servers such as vLLM serve).

The run's model folder (`finetune/` when the recipe fine-tunes on a benchmark, else `instruct/`) holds either a PEFT
adapter (with the base it was trained on, or the base's Hub id) or a full model. It is loaded by the one loader of
trained models, `llava_adapt.model.load.load_trained`: an adapter is merged into its base with
`PeftModel.from_pretrained(...).merge_and_unload()`, the trained projector (stored in full in the adapter,
`modules_to_save`) replacing the base's, also after the run directory was moved. The result is saved as safetensors
with the processor of that folder, so `AutoModelForImageTextToText` + `AutoProcessor` load the folder with no
llava-adapt or PEFT involved.

transformers and PEFT are imported inside the functions, so that the CLI starts fast.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.run_info import load_run
from llava_adapt.run.atomic import atomic_path

logger = logging.getLogger(__name__)


def export_merged(run_dir: str | Path, out_dir: str | Path, dtype: str = "auto") -> Path:
    """Write the run's final model (`finetune/` or `instruct/`), merged, as a stock transformers folder.

    The folder is written atomically: until it is complete, `out_dir` keeps what it held before (or does not
    exist). It contains `config.json`, `generation_config.json`, `model.safetensors` (or shards) and the processor
    (`processor_config.json`, tokenizer files, `chat_template.jinja`, and the transformers 4.x
    `preprocessor_config.json` and `chat_template.json`).

    Args:
        run_dir (`str | Path`): a run directory whose `instruct` (or, when it runs it, `finetune`) stage completed.
        out_dir (`str | Path`): the folder to write; replaced if it exists.
        dtype (`str`, defaults to `"auto"`): the dtype of the saved weights (`"auto"` keeps the trained one; else a
            name such as `"bfloat16"`).

    Returns:
        `out_dir` as a `Path`.

    Raises:
        PublishError: the run's model stage has not completed, or the adapter's base cannot be found.
    """
    from llava_adapt.model.load import MissingBaseError, load_trained

    run = load_run(run_dir)
    try:
        model, processor = load_trained(run.model_dir, dtype, search_root=run.layout.root)
    except MissingBaseError as exc:
        raise PublishError(str(exc)) from None
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        write_legacy_processor_files(processor, Path(tmp))
    logger.info("wrote the merged model to %s", out_dir)
    return Path(out_dir)


def write_legacy_processor_files(processor, folder: Path) -> None:
    """Also write the processor files of the transformers 4.x layout next to transformers 5's.

    transformers 5 saves the image-processor settings inside `processor_config.json` and the chat template as
    `chat_template.jinja`; serving stacks still on transformers 4.x (older vLLM and SGLang images) read
    `preprocessor_config.json` and `chat_template.json` instead, as llava-hf's own repositories ship them.
    transformers 5 reads either layout, so both are written. `tokenizer_config.json` is made readable by both: a
    `TokenizersBackend` class becomes `PreTrainedTokenizerFast` (the same class under its 4.x name) and a list of
    `extra_special_tokens` becomes `additional_special_tokens` (4.x expects a dict under the former name).
    Checked by hand with transformers 4.57: `AutoProcessor` loads the folder and encodes an image prompt to the
    same ids as transformers 5.

    Args:
        processor (`ProcessorMixin`): the model's processor (a `LlavaProcessor`).
        folder (`Path`): the model folder `processor.save_pretrained` wrote.
    """
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None:
        (folder / "preprocessor_config.json").write_text(image_processor.to_json_string(), encoding="utf-8")
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        if settings.get("tokenizer_class") == "TokenizersBackend":
            settings["tokenizer_class"] = "PreTrainedTokenizerFast"
        if isinstance(settings.get("extra_special_tokens"), list):
            extra = settings.pop("extra_special_tokens")
            settings["additional_special_tokens"] = settings.get("additional_special_tokens", []) + extra
        tokenizer_config.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if getattr(processor, "chat_template", None):
        (folder / "chat_template.json").write_text(
            json.dumps({"chat_template": processor.chat_template}, indent=2) + "\n", encoding="utf-8"
        )
