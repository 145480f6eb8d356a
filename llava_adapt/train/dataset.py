"""Building the tokenized training set of a stage with `datasets`: streamed to disk, tokenized in parallel, drops
counted, the drop limit, and an on-disk cache.

The samples are streamed into an Arrow file (`Dataset.from_generator`, written in batches: never all in memory),
tokenized with `Dataset.map(num_proc=...)` (several processes on a large set), and the kept rows are saved next to
the stage's checkpoints, so a resumed run does not tokenize again. The dataset holds only token ids, labels, the
image path and the length; images are decoded (or their cached vision features read) by the collator, batch by
batch. Because lengths are known up front, the trainer can group batches by length
(`train_sampling_strategy="group_by_length"`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, Features, Sequence, Value, load_from_disk

from llava_adapt.errors import LlavaAdaptError
from llava_adapt.run.atomic import atomic_path, write_json
from llava_adapt.train.examples import SampleTokenizer
from llava_adapt.train.formats import TrainingSample

IMAGE_MISSING = "image file missing"
FEATURES = Features(
    {
        "input_ids": Sequence(Value("int32")),
        "labels": Sequence(Value("int32")),
        "image_path": Value("string"),
        "length": Value("int32"),
    }
)
# The samples as written to the first Arrow file (`messages` as JSON text: their content blocks vary in shape).
RAW_FEATURES = Features(
    {"id": Value("string"), "image": Value("string"), "caption": Value("string"), "messages": Value("string")}
)
# What tokenizing adds per row before the dropped rows are filtered out: the drop reason ("" = kept), truncation.
TOKENIZED_FEATURES = Features({**FEATURES, "drop": Value("string"), "truncated": Value("bool")})
SAMPLES_PER_PROCESS = 5_000  # a smaller set is tokenized in one process (starting workers costs seconds)
MAX_PROCESSES = 16  # each holds its own tokenizer and chat template renderer
BATCH = 1_000  # rows per tokenizing batch and per Arrow write


@dataclass
class DatasetStats:
    """What building the dataset kept and dropped.

    Args:
        kept (`int`): samples in the dataset.
        dropped (`Counter[str]`): dropped samples by reason.
        truncated (`int`): kept samples whose end was cut to fit `max_length`.
        max_tokens (`int`): the longest kept sample, in tokens.
    """

    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    max_tokens: int = 0

    def to_dict(self) -> dict:
        return {"kept": self.kept, "dropped": dict(self.dropped), "truncated": self.truncated,
                "max_tokens": self.max_tokens}  # fmt: skip


class TrainingDataError(LlavaAdaptError, ValueError):
    """The stage's data cannot be trained on (too many samples dropped, nothing left); `stats` has the counts."""

    def __init__(self, message: str, stats: DatasetStats) -> None:
        super().__init__(message)
        self.stats = stats


def _raw_rows(samples: Callable[[], Iterable[TrainingSample]]) -> Iterator[dict]:
    for sample in samples():
        messages = None if sample.messages is None else json.dumps(sample.messages, ensure_ascii=False)
        yield {"id": sample.id, "image": sample.image, "caption": sample.caption, "messages": messages}


def _tokenize_batch(batch: dict[str, list], tokenizer: SampleTokenizer) -> dict[str, list]:
    samples = [
        TrainingSample(id_, image, caption, None if messages is None else json.loads(messages))
        for id_, image, caption, messages in zip(batch["id"], batch["image"], batch["caption"], batch["messages"],
                                                 strict=True)
    ]  # fmt: skip
    missing = [s.image is not None and not os.path.isfile(s.image) for s in samples]
    tokenized = iter(tokenizer.tokenize_many([s for s, gone in zip(samples, missing, strict=True) if not gone]))
    out: dict[str, list] = {name: [] for name in TOKENIZED_FEATURES}
    for sample, gone in zip(samples, missing, strict=True):
        result = IMAGE_MISSING if gone else next(tokenized)
        kept = not isinstance(result, str)
        out["input_ids"].append(result.input_ids if kept else [])
        out["labels"].append(result.labels if kept else [])
        out["image_path"].append(sample.image or "")
        out["length"].append(len(result.input_ids) if kept else 0)
        out["drop"].append("" if kept else result)
        out["truncated"].append(kept and result.truncated)
    return out


def _stats(tokenized: Dataset) -> DatasetStats:
    """Count kept, dropped (by reason) and truncated rows, reading three small columns batch by batch."""
    stats = DatasetStats()
    for batch in tokenized.select_columns(["drop", "truncated", "length"]).iter(batch_size=10 * BATCH):
        for drop, truncated, length in zip(batch["drop"], batch["truncated"], batch["length"], strict=True):
            if drop:
                stats.dropped[drop] += 1
            else:
                stats.kept += 1
                stats.truncated += truncated
                stats.max_tokens = max(stats.max_tokens, length)
    return stats


def default_num_proc(n_samples: int) -> int:
    """Tokenizing processes for `n_samples`: one per `SAMPLES_PER_PROCESS` samples, at most one per CPU core and
    `MAX_PROCESSES`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_PROCESSES, n_samples // SAMPLES_PER_PROCESS))


def tokenize_samples(
    samples: Callable[[], Iterable[TrainingSample]] | Iterable[TrainingSample],
    tokenizer: SampleTokenizer,
    max_dropped_fraction: float,
    out_dir: Path | None = None,
    num_proc: int | None = None,
) -> tuple[Dataset, DatasetStats]:
    """Tokenize samples into a `datasets.Dataset`, dropping (and counting) those the length rule rejects.

    Args:
        samples (`Callable[[], Iterable[TrainingSample]] | Iterable[TrainingSample]`): the stage's samples (image
            paths absolute), or a function that yields them; read once, as a stream.
        tokenizer (`SampleTokenizer`): the tokenizer with the stage's `max_length`.
        max_dropped_fraction (`float`): the most samples that may be dropped, as a fraction of all samples.
        out_dir (`Path`, *optional*): where the dataset is saved (`save_to_disk`, atomically); its working files go
            into a temporary folder beside it. `None` keeps the (small) dataset in memory.
        num_proc (`int`, *optional*): tokenizing processes; `None` = `default_num_proc` of the sample count.

    Raises:
        TrainingDataError: more than `max_dropped_fraction` of the samples are dropped, or none is left. The
            message gives the counts per reason and what to change.
    """
    produce = samples if callable(samples) else lambda: samples
    work_parent = out_dir.parent if out_dir is not None else None
    if work_parent is not None:
        work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tokenize.", dir=work_parent))
    try:
        raw = Dataset.from_generator(
            _raw_rows, features=RAW_FEATURES, cache_dir=str(work), gen_kwargs={"samples": produce},
            fingerprint=f"raw-{os.getpid()}-{work.name}", writer_batch_size=BATCH,
        )  # fmt: skip
        processes = min(num_proc or default_num_proc(len(raw)), max(1, len(raw)))
        tokenized = raw.map(
            _tokenize_batch, batched=True, batch_size=BATCH, writer_batch_size=BATCH, features=TOKENIZED_FEATURES,
            remove_columns=raw.column_names, fn_kwargs={"tokenizer": tokenizer},
            num_proc=processes if processes > 1 else None, new_fingerprint=f"tokenized-{work.name}", desc="Tokenizing",
        )  # fmt: skip
        stats = _stats(tokenized)
        total = stats.kept + sum(stats.dropped.values())
        dropped = sum(stats.dropped.values())
        if stats.kept == 0 or (total and dropped / total > max_dropped_fraction):
            reasons = ", ".join(f"{reason}: {n}" for reason, n in stats.dropped.most_common()) or "no samples"
            raise TrainingDataError(
                f"{dropped} of {total} samples would be dropped ({reasons}), more than max_dropped_fraction="
                f"{max_dropped_fraction}. Raise max_length (now {tokenizer.max_length}; one image alone is "
                f"{tokenizer.image_tokens} tokens) or fix the data; training on them would give silently empty "
                "losses.",
                stats,
            )
        if dropped:
            tokenized = tokenized.filter(lambda drop: [not d for d in drop], input_columns="drop", batched=True,
                                         batch_size=BATCH, new_fingerprint=f"kept-{work.name}")  # fmt: skip
        kept = tokenized.remove_columns(["drop", "truncated"])
        if out_dir is None:
            return kept.flatten_indices(keep_in_memory=True), stats
        with atomic_path(out_dir) as tmp:
            kept.save_to_disk(str(tmp))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_from_disk(str(out_dir)), stats


def fingerprint(*parts: object) -> str:
    """A stable hash of the inputs that decide a tokenized dataset (files, tokenizer, template, max_length)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path) and part.is_file():
            with open(part, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def cached_dataset(
    cache_dir: Path, key: str, build: Callable[[Path], tuple[Dataset, DatasetStats]]
) -> tuple[Dataset, DatasetStats]:
    """Return the tokenized dataset saved under `cache_dir` for `key`, or build and save it.

    Args:
        cache_dir (`Path`): where the dataset and its stats are kept (inside the stage's folder).
        key (`str`): the fingerprint of everything the dataset depends on; another key rebuilds it.
        build (`Callable[[Path], tuple[Dataset, DatasetStats]]`): builds the dataset and saves it into the folder
            it is given (`tokenize_samples(..., out_dir=folder)`).
    """
    meta_path = cache_dir / "dataset.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") == key and (cache_dir / "data").is_dir():
            stats = DatasetStats(
                kept=meta["stats"]["kept"],
                dropped=Counter(meta["stats"]["dropped"]),
                truncated=meta["stats"]["truncated"],
                max_tokens=meta["stats"]["max_tokens"],
            )
            return load_from_disk(str(cache_dir / "data")), stats
    _, stats = build(cache_dir / "data")
    write_json(meta_path, {"key": key, "stats": stats.to_dict()})
    return load_from_disk(str(cache_dir / "data")), stats
