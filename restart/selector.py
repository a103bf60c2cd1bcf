"""A dbt node selector as data: the criteria it intersects and its graph operator. Rendered once, by `str()`.

`orders`, `file:orders,resource_type:model,package:shop`, `tag:nightly`, `stg_orders+`: the planner builds,
compares and measures selectors as `Selector`s and renders them only into the narrowed command's `--select`.
Only what the planner writes is modelled: `,` intersection of `method:value` criteria (the default method,
fqn, written without one) and the `+` that adds a selection's descendants.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Method(StrEnum):
    """The selector methods the planner writes and models (dbt's node selection methods)."""

    FQN = "fqn"  # also what a criterion without a method means
    RESOURCE_TYPE = "resource_type"
    PACKAGE = "package"
    TAG = "tag"
    PATH = "path"
    FILE = "file"  # dbt 1.6+: the file's name or its stem


INTERSECTION: Final = ","
CHILDREN: Final = "+"
METHOD_SEPARATOR: Final = ":"


@dataclass(frozen=True)
class Criterion:
    """One `method:value` of a selector; `method` '' is dbt's default (a node's fqn or name).

    Not checked: a value holding `,`, or ending in `+`, or (without a method) holding `:`, renders
    text that dbt (and `Selector.parse`) read otherwise; dbt's node names hold none of them.
    """

    method: str
    value: str

    def __str__(self) -> str:
        return f"{self.method}{METHOD_SEPARATOR}{self.value}" if self.method else self.value

    @classmethod
    def parse(cls, text: str) -> Criterion:
        method, separator, value = text.partition(METHOD_SEPARATOR)
        return cls(method, value) if separator else cls("", text)

    @property
    def by_fqn(self) -> bool:
        """Whether it matches on the node's fqn (no method, or `fqn:`)."""
        return self.method in ("", Method.FQN)


@dataclass(frozen=True)
class Selector:
    """The nodes every criterion picks (`a,b`), and with `children` their descendants too (`a+`)."""

    criteria: tuple[Criterion, ...]
    children: bool = False

    def __post_init__(self) -> None:
        if not self.criteria:
            raise ValueError("a selector needs at least one criterion")

    def __str__(self) -> str:
        return INTERSECTION.join(map(str, self.criteria)) + (CHILDREN if self.children else "")

    @classmethod
    def of(cls, *criteria: tuple[str, str] | str, children: bool = False) -> Selector:
        """`Selector.of("orders", (Method.RESOURCE_TYPE, "model"))`: a name alone, or (method, value) pairs."""
        parts = tuple(Criterion("", c) if isinstance(c, str) else Criterion(*c) for c in criteria)
        return cls(parts, children)

    @classmethod
    def parse(cls, text: str) -> Selector:
        """The selector `str()` rendered as `text`."""
        children = text.endswith(CHILDREN)
        body = text.removesuffix(CHILDREN) if children else text
        return cls(tuple(Criterion.parse(part) for part in body.split(INTERSECTION)), children)

    @property
    def single(self) -> Criterion | None:
        """Its only criterion, or None for an intersection."""
        return self.criteria[0] if len(self.criteria) == 1 else None

    def with_children(self) -> Selector:
        """`name+`: these nodes and every node below them."""
        return Selector(self.criteria, children=True)

    def intersect(self, criterion: Criterion) -> Selector:
        """This intersection narrowed by one more criterion."""
        return Selector((*self.criteria, criterion), self.children)


def render(selectors: tuple[Selector, ...] | list[Selector]) -> list[str]:
    """The selectors as the words of a `--select`."""
    return [str(selector) for selector in selectors]
