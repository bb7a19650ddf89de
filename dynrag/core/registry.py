"""A name -> object registry whose entries may be ``"module:attribute"`` strings, imported on use.

Model families and backends are registered this way, so that importing dynrag loads no model
code (torch, transformers, vllm) until something is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

__all__ = ["LazyRegistry", "import_target"]

T = TypeVar("T")


def import_target(target: str) -> Any:
    """The object a ``"module:attribute"`` string names (imported now)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class LazyRegistry(Generic[T]):
    """Named entries of one kind (``what`` names the kind in error messages).

    With a ``group``, the entry points of that group (``[project.entry-points."<group>"]`` in
    an installed distribution's metadata, this one's included) are entries too, read on first
    use; an entry given here or registered wins over an entry point of the same name.
    """

    def __init__(self, what: str, entries: Mapping[str, str | T], group: str | None = None) -> None:
        """Start with ``entries``: objects, or ``"module:attribute"`` strings naming them."""
        self.what = what
        self._entries: dict[str, str | T] = dict(entries)
        self._group = group

    def _discover(self) -> None:
        """Add the group's entry points once (names already taken are kept)."""
        if self._group is None:
            return
        from importlib.metadata import entry_points

        for point in entry_points(group=self._group):
            self._entries.setdefault(point.name, point.value)
        self._group = None

    def register(self, name: str, entry: str | T, *, replace: bool = False) -> None:
        """Add ``entry`` under ``name``.

        Raises:
            ValueError: ``name`` is blank, or taken and ``replace`` is false.
        """
        self._discover()
        if not name or not name.strip():
            msg = f"a {self.what} needs a non-empty name"
            raise ValueError(msg)
        if name in self._entries and not replace:
            msg = f"{self.what} {name!r} is already registered"
            raise ValueError(msg)
        self._entries[name] = entry

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and plugins that registered it).

        Raises:
            ValueError: no such entry.
        """
        self._discover()
        if self._entries.pop(name, None) is None:
            msg = f"{self.what} {name!r} is not registered"
            raise ValueError(msg)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._discover()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The entry ``name`` (imported on first use).

        Raises:
            ValueError: no such entry; the message lists the registered names.
        """
        self._discover()
        try:
            entry = self._entries[name]
        except KeyError:
            msg = f"unknown {self.what} {name!r}; registered: {', '.join(self.names())}"
            raise ValueError(msg) from None
        if isinstance(entry, str):
            entry = import_target(entry)
            self._entries[name] = entry
        return entry
