"""The training settings a search varies, declared in its ``hyperparameters`` mapping.

Each entry names a setting of the training section by its path (``optimizer.lr``, ``batch_size``,
``augmentation.rotate``) and says what it may take: ``{low, high}`` (with ``log: true`` for a log scale) or
``{choices: [...]}``. Bounds and choices are checked with the training section's own declaration of that
setting (its type, range and choices), so a search can never try a value ``train`` would refuse. Pure
functions: parse, draw, mutate, apply, describe; Optuna's samplers are asked within the same ranges.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass
from typing import Any

import optuna

from graphcompiler.errors import short_repr
from graphcompiler.layers.spec import Bool, Choice, Float, Int, Param

@dataclass(frozen=True)
class Range:
    """What one training setting may take in a search."""

    field: Param
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def draw(self, rng: random.Random) -> Any:
        """A value drawn uniformly (on the log scale where ``log``)."""
        if self.choices:
            return rng.choice(self.choices)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return self._kept(value)

    def mutate(self, value: Any, rng: random.Random) -> Any:
        """A value near ``value`` and different from it: another choice, or a step of up to a quarter of the
        range (on the log scale where ``log``)."""
        if self.choices:
            others = [c for c in self.choices if c != value]
            return rng.choice(others) if others else value
        for _ in range(20):
            if self.log:
                width = math.log(self.high) - math.log(self.low)
                moved = math.exp(math.log(max(value, self.low)) + rng.uniform(-0.25, 0.25) * width)
            else:
                moved = value + rng.uniform(-0.25, 0.25) * (self.high - self.low)
            moved = self._kept(min(max(moved, self.low), self.high))
            if moved != value:
                return moved
        if isinstance(self.field, Int):  # a range of a few ints: the steps above round back to the value
            return value + 1 if value + 1 <= self.high else value - 1
        return value

    def _kept(self, value: float) -> Any:
        if isinstance(self.field, Int):
            return min(max(round(value), int(self.low)), int(self.high))
        # What a person would write (0.003162, not 0.0031622776601683794), still within the range.
        return min(max(float(f"{value:.4g}"), self.low), self.high)


def parse_space(value: Any, training_fields: tuple) -> dict[str, Range]:
    """The search section's ``hyperparameters`` mapping, checked; ValueError names the entry and the fix."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of training settings to ranges, got {short_repr(value)}")
    space = {}
    for path, spec in value.items():
        try:
            space[path] = _range(str(path), spec, training_fields)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return space


def _range(path: str, spec: Any, training_fields: tuple) -> Range:
    settings = _declared(training_fields)
    field = settings.get(path)
    if field is not None and field.unsearched:
        raise ValueError(field.unsearched)
    if not _searchable(field):
        raise ValueError(f"not a training setting the search can vary; these can: "
                         f"{', '.join(p for p, f in settings.items() if _searchable(f))}")
    if not isinstance(spec, dict):
        raise ValueError(f"expected {{low: ..., high: ...}} or {{choices: [...]}}, got {short_repr(spec)}")
    unknown = sorted(set(spec) - {"low", "high", "log", "choices"})
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}': give low and high (and log: true), or choices")
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise ValueError("give either choices or low and high, not both")
        choices = spec["choices"]
        if not isinstance(choices, list) or len(choices) < 2:
            raise ValueError(f"choices: expected a list of at least two values, got {short_repr(choices)}")
        checked = tuple(_checked(path, field, v, "choices") for v in choices)
        if len(set(checked)) != len(checked):
            raise ValueError("choices: a value is listed twice")
        return Range(field, choices=checked)
    if isinstance(field, (Bool, Choice)):
        raise ValueError(f"it is {field.expected()}: give choices, not low and high")
    if "low" not in spec or "high" not in spec:
        raise ValueError("give low and high (and log: true for a log scale), or choices")
    low, high = _checked(path, field, spec["low"], "low"), _checked(path, field, spec["high"], "high")
    if not low < high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"log: expected true or false, got {short_repr(log)}")
    if log and low <= 0:
        raise ValueError(f"a log scale needs low above 0, got {low}")
    return Range(field, float(low), float(high), log)


def _checked(path: str, field: Param, value: Any, key: str) -> Any:
    try:
        return field.check(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}: training.{path} takes {field.expected()}") from None


def _searchable(field: Param | None) -> bool:
    return isinstance(field, (Int, Float, Bool, Choice)) and not field.unsearched


def _declared(fields: tuple, prefix: str = "") -> dict[str, Param]:
    """Every setting of a declaration, by its dotted path."""
    found: dict[str, Param] = {}
    for f in fields:
        path = prefix + f.name
        found |= _declared(f.fields, path + ".") if hasattr(f, "fields") else {path: f}
    return found


def current(training: dict | None, space: dict[str, Range]) -> dict[str, Any]:
    """The values a training section gives the searched settings (their defaults where it is silent)."""
    values = {}
    for path, rng in space.items():
        node: Any = training or {}
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[path] = rng.field.default if node is None else node
    return values


def apply(training: dict | None, values: dict[str, Any]) -> dict:
    """A copy of the training section with ``values`` set at their paths."""
    out = copy.deepcopy(training or {})
    for path, value in values.items():
        *groups, name = path.split(".")
        node = out
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    return out


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed between two settings, one line each: ``optimizer.lr 0.001 -> 0.003162``."""
    return [f"{path} {shown(before.get(path))} -> {shown(value)}" for path, value in after.items()
            if before.get(path) != value]


def shown(value: Any) -> str:
    """A setting's value as trial lines print it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def suggest(trial: optuna.Trial, space: dict[str, Range]) -> dict[str, Any]:
    """The values an Optuna sampler picks for this trial, within the ranges."""
    values = {}
    for path, r in space.items():
        if r.choices:
            values[path] = trial.suggest_categorical(path, list(r.choices))
        elif isinstance(r.field, Int):
            values[path] = trial.suggest_int(path, int(r.low), int(r.high), log=r.log)
        else:
            values[path] = trial.suggest_float(path, r.low, r.high, log=r.log)
    return values
