"""A registry per family of plug-ins (animators, outputs): register by name, create by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from src.core.errors import UserError

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, family: str, option: str) -> None:
        self.family = family
        self.option = option  # the command-line option or config key that picks one
        self._items: dict[str, Callable[..., T]] = {}
        self._lazy: dict[str, str] = {}  # name -> module that registers it when imported

    def register(self, name: str, factory: Callable[..., T]) -> Callable[..., T]:
        if name in self._items:
            raise ValueError(f"{self.family} {name!r} is already registered")
        self._items[name] = factory
        self._lazy.pop(name, None)
        return factory

    def register_lazy(self, name: str, module: str) -> None:
        """`name` is provided by `module`, imported only when `name` is asked for (heavy plug-ins)."""
        if name not in self._items:
            self._lazy[name] = module

    def names(self) -> list[str]:
        return sorted({*self._items, *self._lazy})

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._items and name in self._lazy:
            import importlib

            importlib.import_module(self._lazy[name])
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"{self.option} {name!r}: unknown {self.family}; known: {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy
