"""Loading a recipe: find the file, overlay a preset, apply `key=value` overrides, interpolate, validate.

Validation is strict and happens before anything runs. Every problem names the file and the key, and suggests
the nearest valid name for a misspelt key, domain, source, benchmark or preset.

Presets and overrides merge into the recipe key by key, with two exceptions, because arguments belong to the
thing they configure: an overlay that switches `data.source` to another source replaces `data.args` instead of
merging into them (and one that switches `finetune.benchmark` replaces `finetune.args`), and one that sets
`evaluate.benchmarks` drops the `evaluate.args` of benchmarks no longer listed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

from llava_adapt.domain import Domain
from llava_adapt.errors import InputError
from llava_adapt.recipe.catalog import builtin_recipe_files, recipe_catalog
from llava_adapt.recipe.errors import KeyedError
from llava_adapt.recipe.schema import Recipe
from llava_adapt.registry import DomainConflictError, DomainLoadError, DomainNotFoundError, registry
from llava_adapt.suggest import did_you_mean

PRESETS_KEY = "presets"
logger = logging.getLogger(__name__)


class RecipeError(InputError, ValueError):
    """A recipe cannot be used. `problems` lists every problem as `(key, message)`."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {key}: {msg}" if key else f"{source}: {msg}" for key, msg in problems]
        super().__init__("invalid recipe\n" + "\n".join(f"  {line}" for line in lines))


@dataclass
class LoadedRecipe:
    """A validated recipe and where it came from.

    Args:
        recipe (`Recipe`): the validated recipe.
        path (`Path`): the YAML file it was read from.
        preset (`str | None`): the preset overlaid, if any.
        overrides (`list[str]`): the `key=value` overrides applied.
        resolved (`dict`): the recipe as plain data after interpolation (what `recipe.yaml` in the run dir holds).
    """

    recipe: Recipe
    path: Path
    preset: str | None = None
    overrides: list[str] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)

    def domain(self) -> Domain:
        return registry.get(self.recipe.domain)


def builtin_recipes() -> dict[str, Path]:
    """The recipes shipped with llava-adapt, by name (file stem)."""
    return {r.name: r.path for r in builtin_recipe_files()}


def find_recipe(name_or_path: str) -> Path:
    """Resolve a recipe name (built-in, or shipped by a plugin package: `llava_adapt.recipe.catalog`) or a path to a
    YAML file.

    Raises:
        RecipeError: neither a file nor a recipe name (with a did-you-mean), or a name two plugin packages ship.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file() or "/" in name_or_path:
        if not path.is_file():
            raise RecipeError(str(path), [("", "no such recipe file")])
        return path
    catalog = recipe_catalog()
    if name_or_path in catalog.recipes:
        for shadowed in catalog.shadowed.get(name_or_path, []):
            logger.warning("using the built-in recipe %r; the one %s ships runs by its path: %s", name_or_path,
                           shadowed.provider, shadowed.path)  # fmt: skip
        return catalog.recipes[name_or_path].path
    if name_or_path in catalog.ambiguous:
        files = ", ".join(str(r.path) for r in catalog.ambiguous[name_or_path])
        raise RecipeError(name_or_path, [("", f"more than one plugin package ships a recipe of that name; "
                                              f"pass the path of the one you mean: {files}")])  # fmt: skip
    recipes = catalog.recipes
    raise RecipeError(
        name_or_path,
        [
            (
                "",
                f"no recipe file or recipe of that name.{did_you_mean(name_or_path, recipes)} "
                f"Recipes: {', '.join(sorted(recipes))} (`llava-adapt recipe ls`).",
            )
        ],
    )


def read_presets(path: Path) -> list[str]:
    """The preset names a recipe file defines."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return sorted((data.get(PRESETS_KEY) or {}).keys())


def load_recipe(
    name_or_path: str,
    preset: str | None = None,
    overrides: list[str] | None = None,
    run_dir: str | None = None,
    check_domain: bool = True,
) -> LoadedRecipe:
    """Load, overlay, override, interpolate and validate a recipe.

    Args:
        name_or_path (`str`): a built-in recipe name (`"biomed"`) or a YAML path.
        preset (`str`, *optional*): a preset defined in the recipe's `presets:` section (e.g. `"tiny"`).
        overrides (`list[str]`, *optional*): `dotted.key=value` strings; values are parsed as YAML.
        run_dir (`str`, *optional*): overrides the recipe's `run_dir`.
        check_domain (`bool`, defaults to `True`): also check the domain is installed and that the source,
            source arguments, benchmarks and prompt types exist in it.

    Raises:
        RecipeError: listing every problem with its key.
    """
    path = find_recipe(name_or_path)
    where = str(path)
    try:
        base = OmegaConf.load(path)
    except (yaml.YAMLError, OmegaConfBaseException) as exc:
        raise RecipeError(where, [("", f"not valid YAML: {exc}")]) from None
    if not isinstance(base, DictConfig):
        raise RecipeError(where, [("", "a recipe must be a YAML mapping")])

    presets = base.pop(PRESETS_KEY, None) or OmegaConf.create({})
    if preset is not None:
        if preset not in presets:
            available = ", ".join(sorted(presets)) or "none"
            raise RecipeError(
                where,
                [(PRESETS_KEY, f"unknown preset {preset!r}.{did_you_mean(preset, presets)} Presets: {available}")],
            )
        where = f"{path} (preset {preset})"
        base = overlay(base, presets[preset])

    overrides = list(overrides or [])
    problems = [("", f"override {o!r} is not of the form key=value") for o in overrides if "=" not in o]
    if problems:
        raise RecipeError(where, problems)
    if overrides:
        try:
            base = overlay(base, OmegaConf.from_dotlist(overrides))
        except OmegaConfBaseException as exc:
            raise RecipeError(where, [("", f"bad override: {exc}")]) from None
    if run_dir is not None:
        base.run_dir = run_dir

    try:
        resolved = OmegaConf.to_container(base, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or ""
        raise RecipeError(
            where, [(str(key), f"cannot interpolate: {exc.msg if hasattr(exc, 'msg') else exc}")]
        ) from None
    assert isinstance(resolved, dict)

    try:
        recipe = Recipe.model_validate(resolved)
    except ValidationError as exc:
        raise RecipeError(where, _describe(exc, Recipe)) from None

    loaded = LoadedRecipe(recipe=recipe, path=path, preset=preset, overrides=overrides, resolved=resolved)
    if check_domain:
        problems = check_against_domain(recipe)
        if problems:
            raise RecipeError(where, problems)
    return loaded


def overlay(base: DictConfig, top: DictConfig) -> DictConfig:
    """Merge `top` (a preset or the overrides) into `base`; see the module docstring for the two exceptions."""
    base = base.copy()
    new_source = OmegaConf.select(top, "data.source")
    if new_source is not None and new_source != OmegaConf.select(base, "data.source"):
        OmegaConf.update(base, "data.args", {}, merge=False)
    new_benchmark = OmegaConf.select(top, "finetune.benchmark")
    if new_benchmark is not None and new_benchmark != OmegaConf.select(base, "finetune.benchmark"):
        OmegaConf.update(base, "finetune.args", {}, merge=False)
    benchmarks = OmegaConf.select(top, "evaluate.benchmarks")
    old_args = OmegaConf.select(base, "evaluate.args")
    if benchmarks is not None and old_args is not None:
        kept = {name: old_args[name] for name in old_args if name in list(benchmarks)}
        OmegaConf.update(base, "evaluate.args", kept, merge=False)
    return OmegaConf.merge(base, top)


def check_against_domain(recipe: Recipe) -> list[tuple[str, str]]:
    """Check the parts of a recipe that only the domain plugin can judge; return the problems."""
    try:
        domain = registry.get(recipe.domain)
    except (DomainNotFoundError, DomainConflictError, DomainLoadError) as exc:
        return [("domain", str(exc))]
    problems: list[tuple[str, str]] = []
    source = domain.sources.get(recipe.data.source)
    if source is None:
        problems.append(("data.source", _unknown("source", recipe.data.source, domain.sources, domain.name)))
    else:
        problems += _check_args(source.args, recipe.data.args, "data.args")
    for i, name in enumerate(recipe.evaluate.benchmarks):
        bench = domain.benchmarks.get(name)
        if bench is None:
            problems.append((f"evaluate.benchmarks[{i}]", _unknown("benchmark", name, domain.benchmarks, domain.name)))
        else:
            problems += _check_args(bench.args, recipe.evaluate.args.get(name, {}), f"evaluate.args.{name}")
    for name in recipe.evaluate.args:
        if name not in recipe.evaluate.benchmarks:
            problems.append(
                (f"evaluate.args.{name}", "arguments for a benchmark that evaluate.benchmarks does not list")
            )
    for name in recipe.evaluate.max_new_tokens_by_benchmark:
        if name not in recipe.evaluate.benchmarks:
            problems.append(
                (f"evaluate.max_new_tokens_by_benchmark.{name}", "a benchmark that evaluate.benchmarks does not list")
            )
    judged = [name for name in recipe.evaluate.benchmarks if getattr(domain.benchmarks.get(name), "judge", None)]
    problems += _check_ensemble(recipe, domain)
    if recipe.evaluate.ensemble is not None:
        judged += [n for n in recipe.evaluate.benchmarks if getattr(domain.benchmarks.get(n), "ensemble", None)]
    if recipe.evaluate.judge is not None and not judged:
        with_judge = ", ".join(sorted(n for n, b in domain.benchmarks.items() if b.judge)) or "none"
        problems.append(
            ("evaluate.judge", f"none of evaluate.benchmarks has a judged score (in domain {domain.name!r}: "
                               f"{with_judge}); remove evaluate.judge or add such a benchmark")
        )  # fmt: skip
    problems += _check_finetune(recipe, domain)
    types = domain.prompt_types()
    for i, name in enumerate(recipe.generate.prompt_types or []):
        if name not in types:
            problems.append((f"generate.prompt_types[{i}]", _unknown("prompt type", name, types, domain.name)))
    return problems


def _check_ensemble(recipe: Recipe, domain: Domain) -> list[tuple[str, str]]:
    """`evaluate.ensemble` is offered by at least one of the evaluated benchmarks."""
    kind = recipe.evaluate.ensemble
    if kind is None:
        return []
    offered = {name: domain.benchmarks[name].ensemble.kinds for name in recipe.evaluate.benchmarks
               if name in domain.benchmarks and domain.benchmarks[name].ensemble}  # fmt: skip
    if any(kind in kinds for kinds in offered.values()):
        return []
    where = "; ".join(f"{name}: {', '.join(kinds)}" for name, kinds in offered.items())
    hint = f"the evaluated benchmarks offer {where}" if offered else "none of evaluate.benchmarks offers an ensemble"
    return [("evaluate.ensemble", f"no benchmark offers the ensemble {kind!r} ({hint})")]


def _check_finetune(recipe: Recipe, domain: Domain) -> list[tuple[str, str]]:
    """`finetune.benchmark` exists, its arguments validate, and the run does not evaluate on what it trains on."""
    cfg = recipe.finetune
    if cfg.benchmark is None:
        return []
    bench = domain.benchmarks.get(cfg.benchmark)
    if bench is None:
        return [("finetune.benchmark", _unknown("benchmark", cfg.benchmark, domain.benchmarks, domain.name))]
    problems = _check_args(bench.args, cfg.loader_args(bench.args), "finetune.args")
    evaluated_too = {"finetune", "evaluate"} <= set(recipe.stages) and cfg.benchmark in recipe.evaluate.benchmarks
    if problems or not evaluated_too:
        return problems
    trained = bench.args.model_validate(cfg.loader_args(bench.args))
    evaluated = bench.args.model_validate(recipe.evaluate.args.get(cfg.benchmark, {}))
    if "split" in bench.args.model_fields:
        same = trained.split == evaluated.split and getattr(trained, "path", None) == getattr(evaluated, "path", None)
        what = f"split {trained.split!r}"
    else:
        same = trained == evaluated
        what = "data (the benchmark has no split argument)"
    if same:
        problems.append(
            (
                "finetune.args",
                f"finetune trains on the same {what} of {cfg.benchmark!r} that evaluate scores: training on the test "
                f"set. Fine-tune on another split (finetune.args.split) or evaluate another one "
                f"(evaluate.args.{cfg.benchmark}.split)",
            )
        )
    return problems


def _unknown(kind: str, name: str, valid: Any, domain: str) -> str:
    listing = ", ".join(sorted(valid)) or "none"
    return f"domain {domain!r} has no {kind} {name!r}.{did_you_mean(name, valid)} Available: {listing}"


def _check_args(model: type[BaseModel], args: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    try:
        model.model_validate(args)
    except ValidationError as exc:
        return [(f"{prefix}.{key}" if key else prefix, msg) for key, msg in _describe(exc, model)]
    return []


def _describe(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """Turn pydantic errors into `(dotted key, message)` with did-you-mean for unknown keys."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            fields = _fields_at(root, loc[:-1])
            hint = did_you_mean(loc[-1], fields)
            allowed = f" Allowed keys here: {', '.join(fields)}." if fields and not hint else ""
            problems.append((key, f"unknown key.{hint}{allowed}"))
        elif isinstance(err.get("ctx", {}).get("error"), KeyedError):
            keyed = err["ctx"]["error"]
            problems.append((".".join([*loc, keyed.key]), str(keyed)))
        elif err["type"] == "missing":
            problems.append((key, "required key is missing"))
        else:
            got = err.get("input")
            shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
            problems.append((key, f"{err['msg'].removeprefix('Value error, ')}{shown}"))
    return problems


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The field names of the (nested) pydantic model found at `loc`, or [] if it is not a model."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return []
        current = current.model_fields[part].annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def config_hash(data: Any) -> str:
    """A stable short hash of JSON-serialisable data (sorted keys)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
