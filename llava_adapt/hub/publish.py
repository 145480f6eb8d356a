"""Upload a run to the Hugging Face Hub as one commit, idempotently, retrying what the network breaks.

How it behaves, and why:

- **Token.** From the environment (`HF_TOKEN`) or the Hub login (`hf auth login`), through `huggingface_hub`; it is
  never a command-line argument, never written to the run directory, never logged. `HF_ENDPOINT` is read when
  `publish` is called (not only when `huggingface_hub` is imported), so a Hub mirror or a test server works.
- **One commit.** The card, the recipe, the metrics and the weights land in a single `create_commit`, so a reader
  never sees weights without their card. Remote files we publish (weights, configs, processor, `eval/`) that the
  new set no longer has are deleted in the same commit (e.g. `adapter_config.json` after switching to `--merged`,
  which would otherwise make transformers treat the repo as an adapter); files you added yourself stay.
- **Idempotent.** Re-publishing the same run makes no commit. We rely on the Hub's own change detection, which
  `huggingface_hub` uses: the preupload answer carries the remote object id of each file, unchanged files are
  dropped from the commit, and an empty commit is skipped (the result then reports the current head,
  `changed=False`). This costs nothing extra (no download, no listing of hashes) and is exact. The card is
  deterministic (no timestamps) so that it dedups too.
- **Interrupted uploads.** A commit is atomic on the Hub: either all of it landed or none. A failed attempt
  (connection lost, 5xx, 429) is retried from the start, up to `max_attempts` times; because unchanged files are
  skipped, a retry after a commit that landed but whose answer was lost makes no second commit, and large files
  already uploaded to LFS storage are not sent again. Running the same command again after a failure resumes the
  same way.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token, is_offline_mode
from huggingface_hub.errors import HfHubHTTPError

from llava_adapt import __version__
from llava_adapt.hub.bundle import check_repo_id, write_bundle
from llava_adapt.hub.errors import PublishError
from llava_adapt.hub.run_info import PUBLISHED_FILES, load_run

logger = logging.getLogger(__name__)

# Remote files that a publish owns: removed when the new file set no longer has them.
OWNED_FILES = (*PUBLISHED_FILES, "eval/*/metrics.json")
RETRY_STATUS = (408, 412, 429, 500, 502, 503, 504)
NO_TOKEN = "no Hugging Face token found: set HF_TOKEN in the environment or run `hf auth login`"


@dataclass(frozen=True)
class PublishResult:
    """What a publish did.

    Args:
        repo_url (`str`): the repository's URL.
        revision (`str`): the branch committed to.
        commit_oid (`str`): the head commit after publishing.
        changed (`bool`): `False` when the repository already held these exact files (no commit was made).
        files (`list[str]`): the published file set.
        deleted (`list[str]`): remote files removed because the run no longer has them.
        attempts (`int`): how many attempts the upload took.
    """

    repo_url: str
    revision: str
    commit_oid: str
    changed: bool
    files: list[str]
    deleted: list[str]
    attempts: int


def _transient(exc: Exception) -> bool:
    if isinstance(exc, httpx2.TransportError):
        return True
    response = getattr(exc, "response", None)
    return isinstance(exc, HfHubHTTPError) and response is not None and response.status_code in RETRY_STATUS


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status == 401:
        return "the Hub rejected the token (401): check HF_TOKEN or run `hf auth login` again"
    if status == 403:
        return "the token may not write to this repository (403): use a token with write access"
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def hub_api() -> HfApi:
    """The Hub client: `HF_ENDPOINT` read now, the token from `HF_TOKEN` or the Hub login.

    Raises:
        PublishError: offline mode is on, or no token is available.
    """
    if is_offline_mode():
        raise PublishError("HF_HUB_OFFLINE is set: unset it (and TRANSFORMERS_OFFLINE) to publish")
    if not get_token():
        raise PublishError(NO_TOKEN)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    return HfApi(endpoint=endpoint, library_name="llava-adapt", library_version=__version__)


@dataclass(frozen=True)
class Target:
    """Where an upload goes.

    Args:
        repo_id (`str`): `OWNER/NAME`; created if it does not exist.
        repo_type (`str`, defaults to `"model"`): `"model"` or `"dataset"`.
        private (`bool`, defaults to `False`): create the repository private.
        branch (`str`, defaults to `"main"`): the branch committed to, created from `main` if needed.
        owned (`tuple[str, ...]`, defaults to `OWNED_FILES`): patterns of the remote files this kind of publish owns;
            those the new file set no longer has are deleted in the same commit.
    """

    repo_id: str
    repo_type: str = "model"
    private: bool = False
    branch: str = "main"
    owned: tuple[str, ...] = OWNED_FILES


def _prepare(api: HfApi, target: Target, files: list[str]) -> tuple[str, str, list[str]]:
    """Create the repository and branch if needed; return its URL, the branch head and the stale remote files."""
    kind, branch = target.repo_type, target.branch
    repo_url = str(api.create_repo(target.repo_id, private=target.private, exist_ok=True, repo_type=kind))
    if branch != "main":
        api.create_branch(target.repo_id, branch=branch, exist_ok=True, repo_type=kind)
    info = api.repo_info(target.repo_id, revision=branch, repo_type=kind)
    if target.private and info.private is False:
        logger.warning("%s already exists and is public; --private only applies to new repositories", target.repo_id)
    remote = api.list_repo_files(target.repo_id, revision=branch, repo_type=kind)
    stale = sorted(
        p for p in remote if p not in files and any(fnmatch.fnmatchcase(p, pattern) for pattern in target.owned)
    )
    return repo_url, info.sha, stale


def _commit(
    api: HfApi, target: Target, head: str, folder: Path, files: list[str], stale: list[str], message: str
) -> str:
    """Commit the files (unchanged ones are dropped by `huggingface_hub`) and delete `stale`; return the new head."""
    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=folder / f) for f in files]
    operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
    commit = api.create_commit(target.repo_id, operations, commit_message=message, revision=target.branch,
                               parent_commit=head, repo_type=target.repo_type)  # fmt: skip
    return commit.oid


def upload(
    api: HfApi,
    target: Target,
    folder: Path,
    files: list[str],
    message: str,
    max_attempts: int = 3,
    retry_wait: float = 2.0,
) -> PublishResult:
    """Upload `files` of `folder` as one commit, retrying transient failures (see the module docstring).

    Args:
        api (`HfApi`): the client (`hub_api`).
        target (`Target`): the repository, its type and visibility, the branch and the remote files owned.
        folder (`Path`): the folder the files are relative to.
        files (`list[str]`): the file set to publish.
        message (`str`): the commit message.
        max_attempts (`int`, defaults to `3`): attempts before giving up on transient errors (connection lost,
            HTTP 408/412/429/5xx).
        retry_wait (`float`, defaults to `2.0`): seconds before the second attempt, doubled after each failure.

    Raises:
        PublishError: the upload failed; the message says what to do and never contains the token.
    """
    repo_id = target.repo_id
    # `first_head` is the head the first attempt saw: an attempt whose commit landed but whose answer was lost
    # looks like a no-op to the retry, yet this publish did change the repository.
    attempt, first_head, deleted = 1, None, set()
    while True:
        try:
            url, head, stale = _prepare(api, target, files)
            first_head = first_head or head
            deleted.update(stale)
            oid = _commit(api, target, head, folder, files, stale, message)
        except Exception as exc:
            if not _transient(exc):
                raise PublishError(f"publishing to {repo_id} failed: {_describe(exc)}") from exc
            if attempt >= max_attempts:
                raise PublishError(
                    f"publishing to {repo_id} failed after {attempt} attempts ({_describe(exc)}); run the same "
                    "command again: nothing half-written is left on the Hub, and what already landed is not "
                    "uploaded twice"
                ) from exc
            wait = retry_wait * 2 ** (attempt - 1)
            logger.warning("attempt %d failed (%s); retrying in %.0f s", attempt, _describe(exc), wait)
            time.sleep(wait)
            attempt += 1
            continue
        break
    changed = oid != first_head
    if changed:
        logger.info("committed %s to %s (%s)", oid[:10], url, target.branch)
    else:
        logger.info("%s (%s) already holds these files at %s: nothing to commit", url, target.branch, oid[:10])
    return PublishResult(url, target.branch, oid, changed, files, sorted(deleted), attempt)


def publish(
    run_dir: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    merged: bool = False,
    license: str | None = None,
    datasets: Sequence[str] | None = None,
    max_attempts: int = 3,
    retry_wait: float = 2.0,
) -> PublishResult:
    """Publish a run directory to a Hub model repository.

    Args:
        run_dir (`str | Path`): a run directory whose `instruct` stage completed.
        repo_id (`str`): the target repository, `OWNER/NAME`; created if it does not exist.
        private (`bool`, defaults to `False`): create the repository private (an existing one keeps its visibility).
        revision (`str`, *optional*): the branch to commit to, created from `main` if needed; defaults to `main`.
        merged (`bool`, defaults to `False`): upload full weights with the adapter merged in (`export_merged`)
            instead of the adapter.
        license (`str`, *optional*): a Hub license id for the card; defaults to the recipe's `publish.license`.
        datasets (`Sequence[str]`, *optional*): Hub ids of the training datasets for the card; defaults to the
            domain plugin's `extras["hub_datasets"]`.
        max_attempts (`int`, defaults to `3`): attempts before giving up on transient errors (connection lost,
            HTTP 408/412/429/5xx).
        retry_wait (`float`, defaults to `2.0`): seconds before the second attempt, doubled after each failure.

    Returns:
        A `PublishResult`; `changed` is `False` when the repository already held exactly these files.

    Raises:
        PublishError: the run is not ready, no token is available, or the upload failed; the message says what to
            do and never contains the token.
    """
    check_repo_id(repo_id)
    run = load_run(run_dir)
    api = hub_api()
    branch = revision or "main"
    what = "merged model" if merged and run.kind == "adapter" else run.kind
    message = f"Publish llava-adapt run {run.layout.root.resolve().name} ({what})"
    with tempfile.TemporaryDirectory(prefix=".publish-", dir=run.layout.root) as tmp:
        folder = Path(tmp) / "bundle"
        files = write_bundle(run.layout.root, folder, repo_id, merged, license, datasets, revision, link_files=True)
        logger.info("publishing %d files of %s to %s (branch %s)", len(files), run.layout.root, repo_id, branch)
        target = Target(repo_id, "model", private, branch)
        return upload(api, target, folder, files, message, max_attempts, retry_wait)
