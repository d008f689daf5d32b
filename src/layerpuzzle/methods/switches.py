"""Switches: a method's named choices between the paper's reading and its released code's behaviour.

A :class:`Switch` is declared once, in the ``switches`` module of the method's
package (named by its registry entry).  The declaration is the reference: the
method's schema fragment must list exactly its values and default (a test
compares them), values are checked with :meth:`Switch.check`, and the model card
of every checkpoint explains each switch it was built with by the sentence
declared here (:func:`card_notes`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Switch:
    """One switch: its ``allowed`` values (schema order), the value when it is absent (``default``), which value
    reproduces the released code (``released``; None when neither is the code's) and one sentence per value."""

    name: str
    allowed: tuple[str, ...]
    default: str
    meanings: Mapping[str, str] = field(hash=False)
    released: str | None = None

    def __post_init__(self) -> None:
        if self.default not in self.allowed:
            raise ValueError(f"switch {self.name!r}: default {self.default!r} is not one of {self.allowed}")
        if set(self.meanings) != set(self.allowed):
            raise ValueError(f"switch {self.name!r}: meanings for {sorted(self.meanings)}, values {list(self.allowed)}")
        if self.released is not None and self.released not in self.allowed:
            raise ValueError(f"switch {self.name!r}: released value {self.released!r} is not one of {self.allowed}")

    def check(self, value: Any, key: str | None = None) -> str:
        """``value`` when allowed, else ValueError naming the key, the value and what is allowed."""
        if value not in self.allowed:
            raise ValueError(f"config key `{key or self.name}`: value {value!r} is not allowed; allowed: "
                             f"{', '.join(self.allowed)}")
        return value

    def note(self, value: str) -> str:
        """The model-card sentence of ``value``."""
        tag = " (the released code's behaviour)" if value == self.released else ""
        return f"`{self.name}` = `{value}`{tag}: {self.meanings[value]}"


def method_switches(key: str) -> dict[str, Switch]:
    """{name: switch} of registered method ``key`` ({} when its entry names no switches module)."""
    from .registry import entry

    module = entry(key).switches
    if module is None:
        return {}
    declared = importlib.import_module(module).SWITCHES
    return {s.name: s for s in declared.get(key, ())}


def _settings_values(params: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for name, value in params.items():
        yield name, value
    nested = params.get("settings")
    if isinstance(nested, Mapping):
        yield from nested.items()


def card_notes(key: str, params: Mapping[str, Any]) -> list[str]:
    """One model-card line per switch of method ``key`` that ``params`` (or ``params["settings"]``) sets."""
    switches = method_switches(key)
    seen: dict[str, str] = {}
    for name, value in _settings_values(params):
        if name in switches and isinstance(value, str) and value in switches[name].allowed:
            seen.setdefault(name, value)
    return [switches[name].note(value) for name, value in sorted(seen.items())]
