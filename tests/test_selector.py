"""`Selector`: a dbt node selector as data, rendered once and read back the same."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from restart.selector import Criterion, Method, Selector, render

# Values as dbt's node names, versions, tags, folders and packages spell them: no `,`, `:`, `+` or space.
VALUES = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,20}", fullmatch=True)
METHODS = st.sampled_from(["", *Method])
CRITERIA = st.builds(Criterion, METHODS, VALUES)
SELECTORS = st.builds(Selector, st.lists(CRITERIA, min_size=1, max_size=4).map(tuple), st.booleans())


@given(SELECTORS)
def test_render_then_parse_gives_the_same_selector(selector: Selector) -> None:
    text = str(selector)
    assert Selector.parse(text) == selector
    assert str(Selector.parse(text)) == text
    assert text.count(",") == len(selector.criteria) - 1 and text.endswith("+") == selector.children


@given(st.lists(st.builds(lambda c: str(c), CRITERIA), min_size=1, max_size=4), st.booleans())
def test_parse_then_render_gives_the_same_text(parts: list[str], children: bool) -> None:
    text = ",".join(parts) + ("+" if children else "")
    assert str(Selector.parse(text)) == text


def test_the_selectors_the_planner_writes() -> None:
    exact = Selector.of((Method.FILE, "orders"), (Method.RESOURCE_TYPE, "model"), (Method.PACKAGE, "shop"))
    assert str(exact) == "file:orders,resource_type:model,package:shop"
    assert exact.single is None and exact.criteria[0].method == Method.FILE
    name = Selector.of("dim.v2")
    assert name.single == Criterion("", "dim.v2") and name.single.by_fqn
    assert str(name.with_children()) == "dim.v2+" and not name.children
    group = Selector.of((Method.TAG, "nightly")).intersect(Criterion(Method.PACKAGE, "shop"))
    assert str(group) == "tag:nightly,package:shop"
    assert render([name, group]) == ["dim.v2", "tag:nightly,package:shop"]


def test_a_method_is_read_up_to_the_first_colon_and_kept_when_not_modelled() -> None:
    assert Selector.parse("path:a:b").criteria == (Criterion("path", "a:b"),)
    unmodelled = Selector.parse("config.materialized:table")
    assert unmodelled.criteria == (Criterion("config.materialized", "table"),)
    assert str(unmodelled) == "config.materialized:table" and not unmodelled.criteria[0].by_fqn
    assert Criterion.parse("fqn:shop.orders").by_fqn and Criterion.parse("shop.orders").by_fqn


def test_selectors_equal_by_content_whatever_spells_the_method() -> None:
    assert Selector.of(("tag", "x")) == Selector.of((Method.TAG, "x"))
    assert len({Selector.of(("tag", "x")), Selector.parse("tag:x"), Selector.of((Method.TAG, "x"))}) == 1
