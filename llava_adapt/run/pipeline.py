"""Run a recipe's stages over one run directory, skipping what is already done.

Rules:
- each stage's config hash covers its own recipe sections, the parts of the domain it reads (their versions, the
  prompt files; `llava_adapt.run.domain_versions`) *and* the hashes of the stages before it, so changing a stage's
  config reruns it and everything after it;
- a stage whose last attempt completed with the same hash is skipped;
- a stage whose last attempt was interrupted (killed, Ctrl-C, crashed) with the same hash is resumed: it keeps what
  it wrote (e.g. trainer checkpoints) and is told `ctx.resume = True`;
- `force` reruns from the named stage;
- a stage that runs from scratch first removes the paths it owns and marks later stages stale.

Under `accelerate launch` (several processes), every process plans the same steps; only the main process takes the
lock, writes the manifest and runs the data and evaluation stages; every process runs the training stages
(`align`, `instruct`, `finetune`), and all wait for each other after each stage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from filelock import FileLock, Timeout

from llava_adapt.domain import Domain
from llava_adapt.errors import LlavaAdaptError, add_note
from llava_adapt.recipe.loader import LoadedRecipe, config_hash
from llava_adapt.recipe.schema import Recipe
from llava_adapt.run.atomic import remove_debris, share_modes, write_text
from llava_adapt.run.domain_versions import domain_sections
from llava_adapt.run.layout import RunLayout
from llava_adapt.run.manifest import COMPLETE, FAILED, INTERRUPTED, Manifest
from llava_adapt.run.stage_table import STAGE_ORDER, STAGES, TRAINING_STAGES
from llava_adapt.stages import StageContext, load_stage
from llava_adapt.suggest import did_you_mean

StageFn = Callable[[StageContext], None]
ADOPTED = "complete, hashed by an older llava-adapt"  # the plan's reason for a stage recorded with its legacy hash
log = logging.getLogger("llava_adapt")


class _SingleProcess:
    """Stands in for `accelerate.PartialState` when the run is not distributed."""

    is_main_process = True

    def wait_for_everyone(self) -> None:
        pass


def process_state():
    """`accelerate.PartialState()` when launched with several processes, else a single-process stand-in."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _SingleProcess()
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # without cpu=True, CPU processes would not group


class PipelineError(LlavaAdaptError, RuntimeError):
    """The pipeline cannot start (bad --force, a locked run directory, ...)."""


@dataclass(frozen=True)
class PlannedStage:
    """What the pipeline will do with one stage: `action` is `run`, `resume` or `skip`."""

    name: str
    action: str
    reason: str
    config_hash: str


def _chain(recipe: Recipe, dump: dict, sections_of: Callable[[str], tuple[str, ...]]) -> dict[str, str]:
    hashes: dict[str, str] = {}
    previous = ""
    for name in recipe.stages:
        sections = {key: dump[key] for key in sections_of(name)}
        previous = config_hash({"stage": name, "sections": sections, "upstream": previous})
        hashes[name] = previous
    return hashes


def stage_hashes(recipe: Recipe, domain: Domain) -> dict[str, str]:
    """Chained config hash of each stage in the recipe (see module docstring)."""
    dump = recipe.model_dump(mode="json") | domain_sections(recipe, domain)
    return _chain(recipe, dump, lambda name: STAGES[name].sections)


def legacy_stage_hashes(recipe: Recipe, domain: Domain) -> dict[str, str]:
    """The hashes llava-adapt gave the same recipe before stage hashes covered the domain's parts: only `prepare`
    read the domain, as its name and `Domain.version`. A completed stage recorded with its legacy hash is taken as
    up to date (and given its new hash), so upgrading llava-adapt does not redo a finished run."""
    dump = recipe.model_dump(mode="json") | {"domain": {"name": domain.name, "version": domain.version}}

    def sections(name: str) -> tuple[str, ...]:
        own = tuple(key for key in STAGES[name].sections if not key.startswith("domain."))
        return ("domain", *own) if name == "prepare" else own

    return _chain(recipe, dump, sections)


def plan(recipe: Recipe, domain: Domain, manifest: Manifest, force: str | None = None) -> list[PlannedStage]:
    """Decide, for each stage, whether to run, resume or skip it.

    Args:
        recipe (`Recipe`): the validated recipe.
        domain (`Domain`): its domain.
        manifest (`Manifest`): the run directory's manifest (empty for a new run).
        force (`str`, *optional*): rerun from this stage on, whatever the manifest says.

    Raises:
        PipelineError: `force` names a stage the recipe does not run.
    """
    if force is not None and force not in recipe.stages:
        raise PipelineError(
            f"--force {force!r}: the recipe's stages are {recipe.stages}.{did_you_mean(force, recipe.stages)}"
        )
    hashes, legacy = stage_hashes(recipe, domain), legacy_stage_hashes(recipe, domain)
    planned: list[PlannedStage] = []
    dirty = False  # an earlier stage (re)runs: everything after it must run too
    for name in recipe.stages:
        h = hashes[name]
        previous = manifest.stage(name)
        if force == name:
            action, reason = "run", "forced"
        elif dirty:
            action, reason = "run", "an earlier stage changed"
        elif previous is None:
            action, reason = "run", "never ran"
        elif previous.get("config_hash") == legacy[name] and previous.get("status") == COMPLETE:
            action, reason = "skip", ADOPTED
        elif previous.get("config_hash") != h:
            action, reason = "run", "config changed"
        elif previous.get("status") == COMPLETE:
            action, reason = "skip", "complete, config unchanged"
        elif previous.get("status") in ("running", INTERRUPTED, FAILED):
            action, reason = "resume", f"last attempt {previous.get('status')}"
        else:
            action, reason = "run", f"status {previous.get('status')}"
        dirty = dirty or action != "skip"
        planned.append(PlannedStage(name, action, reason, h))
    return planned


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory for the duration of a run (`filelock`: flock on POSIX,
    msvcrt on Windows; the OS drops it when the process dies, so a killed run leaves no stale lock).

    The holder's pid is in `.lock.pid` while it runs. Both files are removed when the run ends, the lock file while
    it is still held (filelock >= 3.21 retries a lock taken on a file removed under it), so a finished run leaves
    neither behind; a killed run's files are taken over by the next run.

    Raises:
        PipelineError: another process holds it (the message names its pid).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    owner = run_dir / ".lock.pid"
    lock = FileLock(run_dir / ".lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = owner.read_text().strip() if owner.is_file() else "?"
        raise PipelineError(f"another llava-adapt run (pid {holder or '?'}) is using {run_dir}; wait for it") from None
    try:
        owner.write_text(str(os.getpid()))
        yield
    finally:
        try:
            owner.unlink(missing_ok=True)
            Path(lock.lock_file).unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or vanished run directory: nothing to clean
        finally:
            lock.release()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run_pipeline(
    loaded: LoadedRecipe,
    domain: Domain,
    force: str | None = None,
    stage_fn: Callable[[str], StageFn] = load_stage,
    on_event: Callable[[PlannedStage, str], None] | None = None,
) -> Manifest:
    """Run the recipe's stages in order over `loaded.recipe.run_dir`.

    Args:
        loaded (`LoadedRecipe`): the validated recipe.
        domain (`Domain`): its domain plugin.
        force (`str`, *optional*): rerun from this stage on.
        stage_fn (`Callable[[str], StageFn]`, defaults to `load_stage`): returns the function of a stage
            (tests inject their own).
        on_event (`Callable[[PlannedStage, str], None]`, *optional*): called with `"start"`, `"skip"`, `"done"`.

    Returns:
        The manifest after the run.
    """
    recipe = loaded.recipe
    layout = RunLayout(Path(recipe.run_dir))
    state = process_state()
    main = state.is_main_process
    with run_lock(layout.root) if main else contextlib.nullcontext():
        if main:
            removed = remove_debris(layout.root)  # what a killed run left: temporaries, half-swapped folders
            if removed:
                log.info("removed %d temporary files a killed run left in %s", removed, layout.root)
        manifest = Manifest.load(layout.manifest)
        steps = plan(recipe, domain, manifest, force)
        state.wait_for_everyone()  # every process has planned before the main one writes anything
        if main:
            manifest.set_run_info(
                recipe=str(loaded.path),
                preset=loaded.preset,
                overrides=loaded.overrides,
                domain=domain.name,
                stage_order=list(recipe.stages),
            )
            write_text(layout.recipe, yaml.safe_dump(loaded.resolved, sort_keys=False))
        for i, step in enumerate(steps):
            if step.action == "skip":
                if main and step.reason == ADOPTED:
                    manifest.adopt_hash(step.name, step.config_hash)
                if on_event and main:
                    on_event(step, "skip")
                continue
            resume = step.action == "resume"
            if main:
                later = [s.name for s in steps[i + 1 :]] + [s for s in STAGE_ORDER if s not in recipe.stages]
                manifest.mark_stale(later)
                if not resume:
                    for path in layout.owned_by(step.name):
                        _remove(path)
            state.wait_for_everyone()
            if main or step.name in TRAINING_STAGES:
                _run_stage(step, StageContext(step.name, recipe, domain, layout, resume), manifest, stage_fn,
                           on_event, main)  # fmt: skip
            state.wait_for_everyone()
        return manifest


def _run_stage(
    step: PlannedStage,
    ctx: StageContext,
    manifest: Manifest,
    stage_fn: Callable[[str], StageFn],
    on_event: Callable[[PlannedStage, str], None] | None,
    main: bool,
) -> None:
    """Run one stage and record its outcome in the manifest (main process only)."""
    if main:
        manifest.start_stage(step.name, step.config_hash, ctx.resume)
        if on_event:
            on_event(step, "start")
    started = time.monotonic()
    try:
        stage_fn(step.name)(ctx)
    except BaseException as exc:
        if main:
            _record_failure(manifest, step.name, time.monotonic() - started, ctx, exc)
        raise
    if main:
        for path in ctx.layout.owned_by(step.name):
            share_modes(path)  # weights written 0600 by safetensors become readable like every other file
        manifest.end_stage(step.name, COMPLETE, time.monotonic() - started, ctx.kept, ctx.skipped, ctx.info)
        if on_event:
            on_event(step, "done")


def _record_failure(manifest: Manifest, name: str, seconds: float, ctx: StageContext, exc: BaseException) -> None:
    """Record a stage that failed (or was interrupted) in the manifest, and say on `exc` whether that worked: a full
    disk can refuse the manifest too, and then the user must know it still says `running`."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    status = INTERRUPTED if interrupted else FAILED
    error = None if interrupted else f"{type(exc).__name__}: {exc}"
    try:
        manifest.end_stage(name, status, seconds, ctx.kept, ctx.skipped, ctx.info, error=error)
    except OSError as refused:
        add_note(
            exc,
            f"{manifest.path} could not record this failure ({refused.strerror or refused}): it still says stage "
            f"{name!r} is running; the next run resumes it",
        )
        return
    if not interrupted:
        add_note(
            exc,
            f"stage {name!r} is recorded as failed in {manifest.path}; fix the cause and run the same command again "
            "(completed stages are skipped)",
        )
