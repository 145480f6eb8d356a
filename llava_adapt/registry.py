"""Domain discovery through the entry-point group `llava_adapt.domains`.

Built-in and third-party domains are found the same way: every installed distribution that declares::

    [project.entry-points."llava_adapt.domains"]
    NAME = "package.module:domain"

provides a domain called NAME. Plugins are imported lazily (`get_domain` imports only the one asked for) and
checked against the `Domain` contract when loaded. A plugin that fails to import or to pass the check does not
break the others: `list_domains` reports it as broken, with the reason.
"""

from __future__ import annotations

import importlib.metadata as importlib_metadata
from dataclasses import dataclass, field

from llava_adapt.domain import Domain, check_domain
from llava_adapt.errors import InputError
from llava_adapt.suggest import did_you_mean

ENTRY_POINT_GROUP = "llava_adapt.domains"


class DomainNotFoundError(InputError, KeyError):
    """No installed plugin provides the requested domain."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


class DomainConflictError(InputError, RuntimeError):
    """Two installed distributions claim the same domain name."""


class DomainLoadError(InputError, RuntimeError):
    """A plugin failed to import or does not satisfy the Domain contract."""


@dataclass
class DomainEntry:
    """One domain as the registry sees it.

    Args:
        name (`str`): the entry-point name.
        target (`str`): the entry-point value, `"module:attribute"`.
        package (`str`): the distribution that declared it.
        version (`str`): that distribution's version.
    """

    name: str
    target: str
    package: str
    version: str
    _entry_point: importlib_metadata.EntryPoint = field(repr=False, compare=False)
    _domain: Domain | None = field(default=None, repr=False, compare=False)
    _error: str | None = field(default=None, repr=False, compare=False)

    @property
    def provider(self) -> str:
        return f"{self.package} {self.version}"

    def load(self) -> Domain:
        """Import the plugin and check it; cached after the first call.

        Raises:
            DomainLoadError: naming the plugin, its package and the reason.
        """
        if self._domain is not None:
            return self._domain
        if self._error is not None:
            raise DomainLoadError(self._error)
        plugin = f"{self.name!r} ({self.target}, from {self.provider})"
        try:
            obj = self._entry_point.load()
        except Exception as exc:  # a plugin's import error must not take the CLI down
            self._error = f"domain plugin {plugin} failed to import: {type(exc).__name__}: {exc}"
            raise DomainLoadError(self._error) from exc
        try:
            domain = check_domain(obj, plugin)
        except ValueError as exc:
            self._error = str(exc)
            raise DomainLoadError(self._error) from exc
        if domain.name != self.name:
            self._error = (
                f"domain plugin {plugin}: entry point is named {self.name!r} but the Domain says {domain.name!r}"
            )
            raise DomainLoadError(self._error)
        self._domain = domain
        return domain


@dataclass
class DomainStatus:
    """A row of `llava-adapt domain ls`."""

    name: str
    package: str
    version: str
    target: str
    status: str  # "ok", "broken" or "conflict"
    description: str = ""
    error: str | None = None
    sources: list[str] = field(default_factory=list)
    benchmarks: list[str] = field(default_factory=list)
    prompt_types: list[str] = field(default_factory=list)


class DomainRegistry:
    """The installed domains, discovered from entry points on first use."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._entries: dict[str, list[DomainEntry]] | None = None

    def clear(self) -> None:
        """Forget what was discovered (tests install and remove plugins)."""
        self._entries = None

    def _discover(self) -> dict[str, list[DomainEntry]]:
        if self._entries is None:
            entries: dict[str, list[DomainEntry]] = {}
            seen: set[tuple[str, str, str]] = set()
            for ep in importlib_metadata.entry_points(group=self.group):
                dist = ep.dist
                package = dist.metadata["Name"] if dist is not None else "<unknown>"
                version = dist.version if dist is not None else "?"
                key = (ep.name, ep.value, package)
                if key in seen:  # the same distribution visible twice on sys.path
                    continue
                seen.add(key)
                entries.setdefault(ep.name, []).append(
                    DomainEntry(name=ep.name, target=ep.value, package=package, version=version, _entry_point=ep)
                )
            self._entries = entries
        return self._entries

    def names(self) -> list[str]:
        """Names of all installed domains (loaded or not)."""
        return sorted(self._discover())

    def entry(self, name: str) -> DomainEntry:
        """The entry of domain `name`.

        Raises:
            DomainNotFoundError: with a did-you-mean and the list of installed domains.
            DomainConflictError: when two distributions claim `name`, naming both.
        """
        entries = self._discover()
        if name not in entries:
            installed = ", ".join(sorted(entries)) or "none"
            raise DomainNotFoundError(
                f"unknown domain {name!r}.{did_you_mean(name, entries)} Installed domains: {installed}. "
                "A domain is an installed package that declares an entry point in the group "
                f"'{self.group}' (see `llava-adapt domain new`)."
            )
        claims = entries[name]
        if len(claims) > 1:
            who = " and ".join(f"{e.provider} ({e.target})" for e in claims)
            raise DomainConflictError(
                f"domain {name!r} is provided by more than one installed package: {who}. Uninstall one of them."
            )
        return claims[0]

    def get(self, name: str) -> Domain:
        """Load and return domain `name` (imports only that plugin)."""
        return self.entry(name).load()

    def statuses(self) -> list[DomainStatus]:
        """Every installed domain with its provider and status; never raises for a bad plugin."""
        rows: list[DomainStatus] = []
        for name, claims in sorted(self._discover().items()):
            for e in claims:
                row = DomainStatus(name=name, package=e.package, version=e.version, target=e.target, status="ok")
                if len(claims) > 1:
                    others = ", ".join(o.provider for o in claims if o is not e)
                    row.status, row.error = "conflict", f"also provided by {others}"
                else:
                    try:
                        domain = e.load()
                    except DomainLoadError as exc:
                        row.status, row.error = "broken", str(exc)
                    else:
                        row.description = domain.description
                        row.sources = sorted(domain.sources)
                        row.benchmarks = sorted(domain.benchmarks)
                        row.prompt_types = domain.prompt_types()
                rows.append(row)
        return rows


registry = DomainRegistry()


def get_domain(name: str) -> Domain:
    """Return the installed domain `name` (see `DomainRegistry.get`)."""
    return registry.get(name)
