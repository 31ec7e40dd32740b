"""One registry shape for every pluggable part: checks, backends, node actions, importers...

A :class:`Registry` maps names to factories of one kind of thing::

    CHECKS: Registry[Check] = Registry("check", load=_import_builtin_checks)

    @CHECKS.register("xid")
    class XidCheck: ...

    CHECKS.names()            # ['dcgm', 'xid', ...], sorted
    CHECKS.create("xid")      # XidCheck()
    CHECKS.create("telnet")   # UnknownNameError: unknown check 'telnet' (known: dcgm, xid, ...)

Rules, the same everywhere:

* a name is registered once: registering another factory under a taken name
  raises ``ValueError`` unless ``replace=True``; registering the same (equal)
  factory again is a no-op, so re-importing a module is harmless;
* an unknown name raises :class:`dcops.errors.UnknownNameError` (exit 2) that
  lists the known names;
* ``load``, when given, imports the built-in entries on first lookup (not on
  :meth:`Registry.register`), so importing the registry stays cheap and free of
  import cycles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, cast

from dcops.errors import UnknownNameError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Named factories of ``T`` (see the module docstring)."""

    def __init__(self, kind: str, *, load: Callable[[], object] | None = None) -> None:
        """``kind`` names the things in errors ("check", "scheduler backend", ...)."""
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._load = load
        self._loaded = load is None

    def register(self, name: str, *, replace: bool = False) -> Callable[[F], F]:
        """Decorator: make ``factory`` (usually a class) available as ``name``."""

        def deco(factory: F) -> F:
            self.add(name, factory, replace=replace)
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T], *, replace: bool = False) -> None:
        """Register ``factory`` under ``name`` (the non-decorator form of :meth:`register`)."""
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a non-empty string")
        known = self._factories.get(name)
        if known is not None and not replace and known != factory:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._factories[name] = factory

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; UnknownNameError lists the known names."""
        self._ensure_loaded()
        factory = self._factories.get(name)
        if factory is None:
            raise UnknownNameError(self.kind, name, self.names())
        return factory

    def create(self, name: str, /, *args: Any, **options: Any) -> T:
        """``get(name)(*args, **options)``: a new instance of the thing called ``name``."""
        return self.get(name)(*args, **options)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._ensure_loaded()
        return sorted(self._factories)

    def factories(self) -> dict[str, Callable[..., T]]:
        """A copy of the name -> factory table."""
        self._ensure_loaded()
        return dict(self._factories)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before loading: the modules it imports register here
        try:
            cast("Callable[[], object]", self._load)()
        except BaseException:
            self._loaded = False
            raise

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._factories)})"
