"""The domain plugin contract.

A domain bundles the three things that differ between fields, and nothing else:

1. **sources**: named ways to produce image–caption records (`CaptionRecord`) from local files in the formats
   people have (figure–caption JSONL, DICOM folders, ...) or, for the offline `tiny` presets, synthesised in code;
2. **prompts**: the instruction-generation prompts as text files under `prompts_dir` (layout below), plus the
   function that turns a record into the prompt's user message and the offline generator;
3. **benchmarks**: named evaluation sets (`VQAItem`) with the metric function that scores predictions on them, and
   the declaration of what each metric is: a score, a baseline, a count or a diagnostic (`metric_specs`).

Prompt folder layout (one folder per instruction type, in the shape LLaVA used)::

    prompts/
      leak_patterns.txt      # optional: more leak regexes, one per line
      conversation/
        system_message.txt
        000_context.txt      # few-shot user message (what the generator sees: caption, mentions, boxes)
        000_response.txt     # few-shot reference answer
        001_context.txt
        001_response.txt
        format.json          # optional: how responses are parsed (see llava_adapt.prompt_folder)
      detailed_description/ ...

A plugin package exposes one `Domain` object through the entry-point group `llava_adapt.domains`::

    [project.entry-points."llava_adapt.domains"]
    pathology = "pathology_domain:domain"

`check_domain` validates the object when the registry loads it; its errors name the plugin and the missing piece.
A plugin imports these classes (and everything else it uses from llava-adapt) from `llava_adapt.plugin`, the public
API; this module is where they are defined.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from llava_adapt.data.records import CaptionRecord, Skip, VQAItem
from llava_adapt.errors import InputError
from llava_adapt.evaluate.metric_spec import MetricSpec, benchmark_specs, declared_spec
from llava_adapt.prompt_folder import prompt_folder_problems
from llava_adapt.suggest import did_you_mean

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# `Domain.extras`: the keys the core reads (each a sequence of strings); any other key is a contract error.
HUB_DATASETS = "hub_datasets"  # Hub ids of the domain's training data, listed on model cards
PATIENT_IMAGES = "patient_images"  # patterns of image paths derived from patient data
EXTRAS = {
    HUB_DATASETS: "Hub dataset ids of the domain's training data (model cards list them)",
    PATIENT_IMAGES: "path patterns, relative to the run's data/images/, of images derived from patient data",
}


class NoArgs(BaseModel):
    """Arguments model of a source or benchmark that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class SourceContext:
    """What a source or benchmark loader gets besides its own arguments.

    Args:
        data_root (`Path`): the folder its input files live in; image paths must stay inside it.
        output_dir (`Path`): a folder it may write converted or synthesised images into. Records it yields refer to
            images relative to `output_dir` when they were written there, else relative to `data_root`.
        seed (`int`): the recipe's seed, for anything random.
    """

    data_root: Path
    output_dir: Path
    seed: int = 0


RecordLoader = Callable[[Any, SourceContext], Iterator["CaptionRecord | Skip"]]
RecordCounter = Callable[[Any, SourceContext], "int | None"]
ItemLoader = Callable[[Any, SourceContext], Iterator["VQAItem | Skip"]]
MetricFn = Callable[[Sequence[VQAItem], Sequence[str]], dict[str, float]]


@dataclass(frozen=True)
class Source:
    """A named way to produce image–caption records.

    Args:
        description (`str`): one line shown by `llava-adapt domain ls`.
        load (`Callable[[args, SourceContext], Iterator[CaptionRecord | Skip]]`): yields records, and a `Skip`
            with a reason for every input it cannot use.
        args (`type[BaseModel]`, defaults to `NoArgs`): pydantic model of the arguments the recipe passes in
            `data.args`; `recipe validate` checks them (unknown keys, wrong types) before anything runs.
        count (`Callable[[args, SourceContext], int | None]`, *optional*): how many records `load` will yield for
            these arguments, told without running it and without writing anything (a synthetic source draws
            `n_images`; a record file has so many rows); `None`, or no function, when only `prepare` can tell.
            Records that turn out unusable are still skipped and counted, so the real number can be lower.
            `llava-adapt recipe plan` reads it.
        version (`str`, *optional*): bump when the records the source yields change (a parser fix); reruns
            `prepare` and everything after it in runs that use this source. `None` = the domain's `version`.
    """

    description: str
    load: RecordLoader
    args: type[BaseModel] = NoArgs
    count: RecordCounter | None = None
    version: str | None = None


JudgeMessages = Callable[[VQAItem, str], "list[dict[str, str]]"]
JudgeScore = Callable[[Sequence[VQAItem], Sequence["str | None"]], dict[str, float]]


@dataclass(frozen=True)
class Judge:
    """How a GPT-4-class model judges a benchmark's free-form answers (LLaVA-Bench / LLaVA-Med visual chat).

    The domain writes the prompt and reads the replies; the core sends the requests (`evaluate.judge` in the
    recipe: model, server, key variable, concurrency, retries), caches the replies and counts failures.

    Args:
        messages (`Callable[[VQAItem, str], list[dict[str, str]]]`): the Chat Completions messages that ask the
            judge about one item and the model's answer to it.
        score (`Callable[[items, replies], dict[str, float]]`): aggregates the judge's replies (same order as
            the items; `None` where the request failed for good) into metrics, counting replies it cannot parse.
        description (`str`, defaults to `""`): one line, e.g. how the score is aggregated.
        metric_specs (`Mapping[str, MetricSpec]`, defaults to `{}`): what each metric of `score` means, by name or
            `*` pattern (`llava_adapt.evaluate.metric_spec`); its primary, if any, is the benchmark's primary.
    """

    messages: JudgeMessages
    score: JudgeScore
    description: str = ""
    metric_specs: Mapping[str, MetricSpec] = field(default_factory=dict)


AskFn = Callable[[Sequence["list[dict[str, str]]"]], "list[str | None]"]
EnsembleFn = Callable[[str, Sequence[VQAItem], Sequence[str], AskFn], "tuple[list[str], dict[str, float]]"]
NotesFn = Callable[[Sequence[VQAItem]], "list[str]"]


@dataclass(frozen=True)
class Ensemble:
    """How a benchmark combines the model's answers with a GPT-4-class model's (LLaVA's ScienceQA ensembles).

    The core runs it when the recipe sets `evaluate.ensemble` to one of `kinds`, on the trained model's answers. It
    gives `run` a function `ask` that sends Chat Completions requests (lists of messages) through the
    `evaluate.judge` client (concurrency, rate limits, retries, response cache) and returns each reply's text, or
    `None` where a request failed for good; `run` builds the requests, reads the replies and returns the ensemble's
    final answers, which the benchmark's `metrics` then score next to the model's own.

    Args:
        kinds (`tuple[str, ...]`): the ensembles offered (e.g. `("complement", "requery")`).
        run (`Callable[[kind, items, answers, ask], tuple[list[str], dict[str, float]]]`): the final answers (same
            order as the items) and counts that describe the run (e.g. `n_requeried`).
        description (`str`, defaults to `""`): one line.
        metric_specs (`Mapping[str, MetricSpec]`, defaults to `{}`): what the counts `run` returns mean (the
            final answers' scores are the benchmark's own metrics).
    """

    kinds: tuple[str, ...]
    run: EnsembleFn
    description: str = ""
    metric_specs: Mapping[str, MetricSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """A named evaluation set and its metrics.

    Args:
        description (`str`): one line.
        load (`Callable[[args, SourceContext], Iterator[VQAItem | Skip]]`): yields the benchmark's items.
        metrics (`Callable[[items, predictions], dict[str, float]]`): scores predictions (same order as items),
            offline.
        args (`type[BaseModel]`, defaults to `NoArgs`): pydantic model of the benchmark's arguments.
        prompt (`str`, defaults to `"{question}"`): how a question is put to the model; `{question}` and
            `{choices}` are filled in.
        judge (`Judge`, *optional*): a model-judged score on top of `metrics`, run when the recipe configures
            `evaluate.judge` (free-form chat answers have no reference to match word for word).
        max_new_tokens (`int`, *optional*): the answer length this benchmark needs (long for free-form chat);
            `None` = the recipe's `evaluate.max_new_tokens`.
        correct (`Callable[[VQAItem, str], bool]`, *optional*): whether one closed answer is right the way
            `metrics` counts it (the `correct` column of `predictions.jsonl`); `None` = the generic rule
            (`llava_adapt.evaluate.metrics.is_correct`: the one choice the answer names).
        ensemble (`Ensemble`, *optional*): ways to combine the model's answers with a GPT-4-class model's, run when
            the recipe sets `evaluate.ensemble` (with `evaluate.judge` as the client).
        notes (`Callable[[items], list[str]]`, *optional*): plain-language caveats about the loaded question set
            (e.g. answer types guessed by a rule), written to `metrics.json` (`notes`) and shown in the report.
        metric_specs (`Mapping[str, MetricSpec]`, defaults to `{}`): what each metric of `metrics` means, by name or
            `*` pattern: which are scores (the only ones the model card's `model-index` publishes), baselines,
            counts or diagnostics, which score is primary (`llava_adapt.evaluate.metric_spec`). An undeclared
            metric is shown as a diagnostic and never published as a score.
        version (`str`, *optional*): bump when the benchmark's items, prompt, metrics, judge or ensemble change
            (a metric fix); reruns only `evaluate` (and `finetune`, in runs that fine-tune on this benchmark's
            train split). `None` = the domain's `version`.
    """

    description: str
    load: ItemLoader
    metrics: MetricFn
    args: type[BaseModel] = NoArgs
    prompt: str = "{question}"
    judge: Judge | None = None
    max_new_tokens: int | None = None
    correct: Callable[[VQAItem, str], bool] | None = None
    ensemble: Ensemble | None = None
    notes: NotesFn | None = None
    metric_specs: Mapping[str, MetricSpec] = field(default_factory=dict)
    version: str | None = None


ContextBuilder = Callable[[CaptionRecord], str]
OfflineGenerator = Callable[[CaptionRecord, str, random.Random], "list[dict[str, str]]"]


@dataclass(frozen=True)
class Domain:
    """Everything domain-specific about adapting a LLaVA model.

    Args:
        name (`str`): lower-case identifier, the same as the entry-point name (e.g. `"biomed"`).
        description (`str`): one line shown by `llava-adapt domain ls`.
        sources (`Mapping[str, Source]`): at least one image–caption source, by name.
        benchmarks (`Mapping[str, Benchmark]`): evaluation sets, by name (may be empty for a new domain).
        prompts_dir (`Path`): folder of instruction-generation prompt types (layout in the module docstring).
        build_context (`Callable[[CaptionRecord], str]`): turns a record into the user message of the
            instruction-generation prompt. It must only use the record's caption and the allow-listed context keys.
        context_fields (`tuple[str, ...]`, defaults to `()`): the allow-list of `CaptionRecord.context` keys that
            may reach a prompt; everything else in a record stays local.
        prompt_context_fields (`Mapping[str, tuple[str, ...]]`, defaults to `{}`): a narrower allow-list for some
            prompt types, by prompt type (a subset of `context_fields`); e.g. LLaVA's `conversation` prompt sees
            the captions only, while `detailed_description` and `complex_reasoning` also see the boxes.
        offline_generator (`Callable[[CaptionRecord, str, random.Random], list[dict]]`): writes a conversation
            (LLaVA turns) for a record and prompt type without any network; used by the `tiny` presets.
        leak_patterns (`tuple[str, ...]`, defaults to `()`): regular expressions; a generated answer that matches
            one (e.g. "the caption says") betrays that the teacher did not see the image and is rejected.
        version (`str`, defaults to `"1"`): the version of the domain's code and the default of its parts'
            versions. Bumping it reruns `prepare` (unless the recipe's source has its own `Source.version`),
            `generate` (`build_context`, `offline_generator`, the allow-lists, `leak_patterns`), and everything
            after them; to rerun less, bump the version of the part that changed: `Source.version` (prepare
            onward) or `Benchmark.version` (evaluate only). Prompt files need no version: `generate` hashes the
            prompt folders it uses, so editing one reruns `generate` onward.
        extras (`Mapping[str, Sequence[str]]`, defaults to `{}`): optional facts for the core, by key (constants
            in this module, listed in `EXTRAS`; `check_domain` refuses any other key and any value that is not a
            list or tuple of strings): `HUB_DATASETS` (`"hub_datasets"`: Hub ids of the domain's training data,
            which `publish` lists on the model card) and `PATIENT_IMAGES` (`"patient_images"`: `fnmatch` patterns,
            relative to the run's `data/images/`, of images a source derived from patient data, e.g. converted
            DICOM: dataset publishing embeds them only when the user states they are de-identified).
        card_notices (`tuple[str, ...]`, defaults to `()`): paragraphs (Markdown) every model card of this domain
            shows under its title, e.g. that a medical model is not a medical device.
    """

    name: str
    description: str
    sources: Mapping[str, Source]
    benchmarks: Mapping[str, Benchmark]
    prompts_dir: Path
    build_context: ContextBuilder
    offline_generator: OfflineGenerator
    context_fields: tuple[str, ...] = ()
    prompt_context_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    leak_patterns: tuple[str, ...] = ()
    version: str = "1"
    extras: Mapping[str, Sequence[str]] = field(default_factory=dict)
    card_notices: tuple[str, ...] = ()

    def prompt_types(self) -> list[str]:
        """The instruction types this domain has prompts for (sub-folders of `prompts_dir`)."""
        return sorted(p.name for p in Path(self.prompts_dir).iterdir() if (p / "system_message.txt").is_file())

    def fields_for(self, prompt_type: str | None = None) -> tuple[str, ...]:
        """The context keys a prompt of `prompt_type` may see (`prompt_context_fields`, else `context_fields`)."""
        return tuple(self.prompt_context_fields.get(prompt_type, self.context_fields))


class DomainContractError(InputError, ValueError):
    """A plugin's domain object does not satisfy the contract. The message names the plugin."""


def check_domain(obj: object, plugin: str) -> Domain:
    """Validate a plugin's domain object and return it.

    Args:
        obj (`object`): what the plugin's entry point resolved to.
        plugin (`str`): how to name the plugin in errors (entry-point name and providing package).

    Raises:
        DomainContractError: listing every missing or wrong piece, each naming the plugin.
    """
    if not isinstance(obj, Domain):
        raise DomainContractError(
            f"domain plugin {plugin}: the entry point must resolve to a llava_adapt.plugin.Domain, "
            f"got {type(obj).__name__}"
        )
    problems: list[str] = []
    if not NAME_PATTERN.match(obj.name or ""):
        problems.append(f"name {obj.name!r} must be a lower-case identifier like 'biomed'")
    if not obj.description:
        problems.append("description is empty")
    if not obj.sources:
        problems.append("sources is empty: a domain needs at least one image–caption source")
    for key, source in obj.sources.items():
        if not isinstance(source, Source):
            problems.append(f"sources[{key!r}] is a {type(source).__name__}, expected llava_adapt.plugin.Source")
        elif not callable(source.load):
            problems.append(f"sources[{key!r}].load is not callable")
        elif not (isinstance(source.args, type) and issubclass(source.args, BaseModel)):
            problems.append(f"sources[{key!r}].args must be a pydantic BaseModel class")
        elif source.count is not None and not callable(source.count):
            problems.append(f"sources[{key!r}].count must be callable (args, SourceContext) -> int | None")
        elif not _is_version(source.version):
            problems.append(f"sources[{key!r}].version must be a non-empty string or None, got {source.version!r}")
    for key, bench in obj.benchmarks.items():
        if not isinstance(bench, Benchmark):
            problems.append(f"benchmarks[{key!r}] is a {type(bench).__name__}, expected llava_adapt.plugin.Benchmark")
        elif not (callable(bench.load) and callable(bench.metrics)):
            problems.append(f"benchmarks[{key!r}] needs callable load and metrics")
        elif not (isinstance(bench.args, type) and issubclass(bench.args, BaseModel)):
            problems.append(f"benchmarks[{key!r}].args must be a pydantic BaseModel class")
        elif bench.judge is not None and not (
            isinstance(bench.judge, Judge) and callable(bench.judge.messages) and callable(bench.judge.score)
        ):
            problems.append(f"benchmarks[{key!r}].judge must be a llava_adapt.plugin.Judge with callable messages "
                            "and score")  # fmt: skip
        elif bench.correct is not None and not callable(bench.correct):
            problems.append(f"benchmarks[{key!r}].correct must be callable (item, prediction) -> bool")
        elif bench.ensemble is not None and not (
            isinstance(bench.ensemble, Ensemble) and callable(bench.ensemble.run) and bench.ensemble.kinds
        ):
            problems.append(f"benchmarks[{key!r}].ensemble must be a llava_adapt.plugin.Ensemble with kinds and a "
                            "callable run")  # fmt: skip
        elif bench.notes is not None and not callable(bench.notes):
            problems.append(f"benchmarks[{key!r}].notes must be callable (items) -> list[str]")
        elif not _is_version(bench.version):
            problems.append(f"benchmarks[{key!r}].version must be a non-empty string or None, got {bench.version!r}")
        else:
            problems += _spec_problems(f"benchmarks[{key!r}]", bench)
    if isinstance(obj.card_notices, str) or not all(isinstance(n, str) and n for n in obj.card_notices):
        problems.append("card_notices must be a tuple of non-empty strings")
    problems += _extras_problems(obj.extras)
    for prompt_type, fields in dict(obj.prompt_context_fields).items():
        extra = sorted(set(fields) - set(obj.context_fields))
        if extra:
            problems.append(f"prompt_context_fields[{prompt_type!r}] has {extra}, which are not in context_fields")
    for attr in ("build_context", "offline_generator"):
        if not callable(getattr(obj, attr)):
            problems.append(f"{attr} is not callable")
    prompts_dir = Path(obj.prompts_dir)
    if not prompts_dir.is_dir():
        problems.append(f"prompts_dir {prompts_dir} is not a folder")
    else:
        types = [p for p in sorted(prompts_dir.iterdir()) if p.is_dir()]
        if not types:
            problems.append(f"prompts_dir {prompts_dir} has no prompt-type folders")
        for folder in types:
            if not (folder / "system_message.txt").is_file():
                problems.append(f"prompt type {folder.name!r} has no system_message.txt")
            contexts = sorted(folder.glob("*_context.txt"))
            if not contexts:
                problems.append(f"prompt type {folder.name!r} has no few-shot examples (NNN_context.txt)")
            for ctx in contexts:
                response = ctx.with_name(ctx.name.replace("_context.txt", "_response.txt"))
                if not response.is_file():
                    problems.append(f"prompt type {folder.name!r}: {ctx.name} has no matching {response.name}")
        unknown = sorted(set(obj.prompt_context_fields) - {p.name for p in types})
        if unknown:
            problems.append(f"prompt_context_fields names prompt types that have no folder: {unknown}")
        if not problems:
            problems += prompt_folder_problems(prompts_dir, [p.name for p in types])
    for pattern in obj.leak_patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"leak pattern {pattern!r} is not a valid regular expression ({exc})")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise DomainContractError(f"domain plugin {plugin} does not satisfy the Domain contract:\n{listing}")
    return obj


def _is_version(version: object) -> bool:
    """Whether a part's `version` is usable in a config hash: `None` (the domain's) or a non-empty string."""
    return version is None or (isinstance(version, str) and bool(version))


def _extras_problems(extras: Mapping[str, Any]) -> list[str]:
    """Unknown `Domain.extras` keys (a misspelt key would be silently ignored) and values that are not strings."""
    problems = []
    for key, value in dict(extras).items():
        if key not in EXTRAS:
            known = ", ".join(f"{k!r} ({what})" for k, what in EXTRAS.items())
            problems.append(f"extras has the unknown key {key!r}.{did_you_mean(str(key), EXTRAS)} Known keys: {known}")
        elif not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            problems.append(f"extras[{key!r}] must be a list or tuple of strings, got {value!r}")
    return problems


def _spec_problems(where: str, bench: Benchmark) -> list[str]:
    """What is wrong with the metric declarations of a benchmark, its judge and its ensemble."""
    problems = []
    for part, owner in ((bench, where), (bench.judge, f"{where}.judge"), (bench.ensemble, f"{where}.ensemble")):
        if part is None:
            continue
        specs = part.metric_specs
        if not isinstance(specs, Mapping):
            problems.append(f"{owner}.metric_specs must be a mapping of names to MetricSpec")
            continue
        wrong = sorted(str(k) for k, v in specs.items() if not (isinstance(k, str) and isinstance(v, MetricSpec)))
        if wrong:
            problems.append(f"{owner}.metric_specs[{wrong[0]!r}] is not a llava_adapt.evaluate.metric_spec.MetricSpec")
        primaries = sorted(k for k, v in specs.items() if isinstance(v, MetricSpec) and v.primary)
        if len(primaries) > 1:
            problems.append(f"{owner}.metric_specs declares {len(primaries)} primary metrics {primaries}; keep one")
    if not problems:
        declared = benchmark_specs(bench)
        for name, spec in declared.items():
            if spec.baseline_for is not None and declared_spec(spec.baseline_for, declared) is None:
                problems.append(f"{where}.metric_specs[{name!r}] is the baseline of {spec.baseline_for!r}, "
                                "which it does not declare")  # fmt: skip
    return problems
