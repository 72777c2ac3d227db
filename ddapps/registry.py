"""One generic name -> object registry, used for networks, augmentations and distillation methods.

Modelled on timm's ``register_model``/``create_model``: registering a name twice raises (as
torchvision does) instead of silently overwriting, and an unknown name lists the known ones.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from ddapps.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from lower-case names to objects of one kind (``kind`` names it in errors)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REG.register("convnet")`` adds the decorated object under ``name``."""
        key = name.lower()

        def decorator(obj: T) -> T:
            # INVARIANT: a name maps to exactly one object for the life of the process.
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The object registered as ``name``; :class:`ConfigError` naming the choices otherwise."""
        key = str(name).lower()
        if key not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._items[key]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
