"""Walks of a manifest's graph (`restart.graph`), on a hand-made manifest. Pure."""

from __future__ import annotations

from restart.artifacts import Manifest
from restart.graph import descendants, descendants_of, nearest_parents
from tests.factories import node_of

# a -> b (ephemeral, not rerun) -> c -> d; a -> d
MANIFEST = Manifest(
    {
        "model.shop.a": node_of("model.shop.a"),
        "model.shop.b": node_of("model.shop.b", "model.shop.a"),
        "model.shop.c": node_of("model.shop.c", "model.shop.b"),
        "model.shop.d": node_of("model.shop.d", "model.shop.c", "model.shop.a"),
    }
)
A, B, C, D = (f"model.shop.{n}" for n in "abcd")


def test_below_some_nodes_and_below_each_node() -> None:
    assert descendants_of(MANIFEST, [B]) == {C, D}
    assert descendants_of(MANIFEST, [A, C]) == {B, C, D}  # a root only when it is below another
    assert descendants(MANIFEST) == {A: {B, C, D}, B: {C, D}, C: {D}, D: set()}


def test_nearest_parents_look_through_nodes_outside_the_set() -> None:
    assert nearest_parents(MANIFEST, [A, C, D]) == {A: (), C: (A,), D: (C, A)}
