"""Real tokenizer vocabularies for the tests, offline after one download from PyPI.

PyPI's source distribution of `llama-cpp-python` ships vocabulary-only GGUF files under `vendor/llama.cpp/models/`:
LLaMA-1/2's 32,000-token SentencePiece vocabulary (Vicuna, LLaVA-1.5), Llama-3's byte-level BPE, Qwen2's, and more.
`prepare()` downloads that sdist once with `pip download --no-deps --no-binary :all:` (pip's own index settings
and proxies apply), extracts only the GGUF files in `VOCABULARIES`, converts each with transformers' GGUF loader
(`AutoTokenizer.from_pretrained(folder, gguf_file=...)`, which needs the `gguf` package) and saves it as an
ordinary tokenizer folder, so tests load it in well under a second. Everything lives in one cache folder:
`$LLAVA_ADAPT_TEST_CACHE`, else `~/.cache/llava-adapt/test-tokenizers`; a file lock makes concurrent test runs share
it. The download and conversion take a minute or two the first time on a 2-core machine, nothing afterwards.

LLaVA trained with the slow, sentencepiece-backed `LlamaTokenizer` (`use_fast=False`, `legacy=False` for Vicuna
v1.5). `slow_llama_tokenizer()` rebuilds that tokenizer from the same GGUF vocabulary (pieces, scores and types
are sentencepiece's own), so the tests can compare the two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from filelock import FileLock

SDIST = "llama-cpp-python==0.3.36"
MODELS_DIR = "vendor/llama.cpp/models/"
# name -> GGUF file in the sdist. Mistral-7B's own vocabulary is not shipped: its tests use LLaMA's, which has the
# same size, algorithm (SentencePiece BPE with byte fallback) and special tokens.
VOCABULARIES = {
    "llama-spm": "ggml-vocab-llama-spm.gguf",  # LLaMA-1/2, Vicuna: LLaVA-1.5's language model
    "llama-bpe": "ggml-vocab-llama-bpe.gguf",  # Llama-3
    "qwen2": "ggml-vocab-qwen2.gguf",  # Qwen2 / Qwen2.5
}


class Unavailable(RuntimeError):
    """The sdist could not be downloaded (no route to the package index): the tests that need it skip."""


def cache_dir() -> Path:
    """The cache folder (`$LLAVA_ADAPT_TEST_CACHE` or `~/.cache/llava-adapt/test-tokenizers`)."""
    return Path(os.environ.get("LLAVA_ADAPT_TEST_CACHE", Path.home() / ".cache" / "llava-adapt" / "test-tokenizers"))


def _download_ggufs(target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet", SDIST,
             "-d", tmp],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        archives = list(Path(tmp).glob("*.tar.gz"))
        if result.returncode != 0 or not archives:
            raise Unavailable(f"pip download {SDIST} failed: {(result.stderr or result.stdout).strip()[-400:]}")
        wanted = set(VOCABULARIES.values())
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and MODELS_DIR in member.name and name in wanted:
                    with archive.extractfile(member) as src, open(target / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        missing = wanted - {p.name for p in target.iterdir()}
        if missing:
            raise RuntimeError(f"{SDIST} has no {sorted(missing)} under {MODELS_DIR}")


def prepare() -> dict[str, Path]:
    """Make every tokenizer of `VOCABULARIES` available; return name -> tokenizer folder.

    Raises:
        Unavailable: the sdist is not cached and cannot be downloaded.
    """
    from transformers import AutoTokenizer

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    folders = {name: root / "tokenizers" / name for name in VOCABULARIES}
    with FileLock(str(root / ".lock")):
        if all((f / "tokenizer_config.json").is_file() for f in folders.values()):
            return folders
        gguf_dir = root / "gguf"
        if not all((gguf_dir / f).is_file() for f in VOCABULARIES.values()):
            _download_ggufs(gguf_dir)
        for name, gguf_file in VOCABULARIES.items():
            if (folders[name] / "tokenizer_config.json").is_file():
                continue
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_file)
            tmp = folders[name].with_name(name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tokenizer.save_pretrained(tmp)
            tmp.rename(folders[name])
    return folders


def sentencepiece_model(gguf_path: Path, out: Path) -> Path:
    """Write the sentencepiece model (`tokenizer.model`) that a LLaMA GGUF vocabulary was converted from.

    LLaMA's model: BPE with byte fallback, `add_dummy_prefix`, whitespace escaped as `▁`, no extra-whitespace
    removal, unk/bos/eos = 0/1/2; the pieces, scores and types come from the GGUF file.
    """
    import gguf
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2

    fields = gguf.GGUFReader(str(gguf_path)).fields

    def values(key: str) -> list:
        field = fields[key]
        return [field.parts[i] for i in field.data]

    pieces = [bytes(p).decode("utf-8") for p in values("tokenizer.ggml.tokens")]
    scores = [float(p[0]) for p in values("tokenizer.ggml.scores")]
    types = [int(p[0]) for p in values("tokenizer.ggml.token_type")]
    model = spm_pb2.ModelProto()
    model.trainer_spec.model_type = spm_pb2.TrainerSpec.BPE
    model.trainer_spec.vocab_size = len(pieces)
    model.trainer_spec.byte_fallback = True
    model.trainer_spec.unk_id, model.trainer_spec.bos_id, model.trainer_spec.eos_id = 0, 1, 2
    model.trainer_spec.pad_id = -1
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = False
    model.normalizer_spec.escape_whitespaces = True
    piece_type = spm_pb2.ModelProto.SentencePiece
    # GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
    kinds = {1: piece_type.NORMAL, 2: piece_type.UNKNOWN, 3: piece_type.CONTROL, 4: piece_type.USER_DEFINED,
             5: piece_type.UNUSED, 6: piece_type.BYTE}  # fmt: skip
    for text, score, kind in zip(pieces, scores, types, strict=True):
        piece = model.pieces.add()
        piece.piece, piece.score, piece.type = text, score, kinds[kind]
    out.write_bytes(model.SerializeToString())
    return out


def slow_llama_tokenizer(legacy: bool = False):
    """LLaMA's slow tokenizer as LLaVA used it (`LlamaTokenizer`, `use_fast=False`), rebuilt from the GGUF vocabulary.

    transformers 5 no longer ships the sentencepiece `LlamaTokenizer`; this subclass of its sentencepiece backend
    adds what that class did: a BOS on every encoding and, with `legacy=False`, the `▁` prefix on the text (dropped
    again when a special token follows it).
    """
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    class SlowLlamaTokenizer(SentencePieceBackend):
        vocab_files_names = {"vocab_file": "tokenizer.model"}
        model_input_names = ["input_ids", "attention_mask"]

        def build_inputs_with_special_tokens(self, ids, pair=None):
            return [self.bos_token_id] + ids + (pair or [])

        def tokenize(self, text, **kwargs):
            if self.legacy or not text:
                return super().tokenize(text, **kwargs)
            tokens = super().tokenize("▁" + text.replace("▁", " "), **kwargs)
            if len(tokens) > 1 and tokens[0] == "▁" and tokens[1] in self.all_special_tokens:
                tokens = tokens[1:]
            return tokens

    model_file = cache_dir() / "tokenizer.model"
    if not model_file.is_file():
        sentencepiece_model(cache_dir() / "gguf" / VOCABULARIES["llama-spm"], model_file)
    return SlowLlamaTokenizer(
        vocab_file=str(model_file), legacy=legacy, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
