"""The selection index answers exactly as the full scan over the manifest does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from restart.artifacts import Manifest, ManifestNode
from restart.selection import Selection, _candidates, _Index, group_selectors, select_nodes, selects
from restart.selection import compact as compact_selectors
from restart.selector import Selector

WORDS = st.sampled_from(["shop", "utils", "staging", "orders", "v1", "v2", "dim", "dim_v1", "a.b", "a", "b"])
KINDS = st.sampled_from(["model", "seed", "test", "unit_test"])


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    nodes = {}
    for i in range(draw(st.integers(1, 12))):
        fqn = tuple(draw(st.lists(WORDS, min_size=1, max_size=4)))
        uid = f"n{i}"
        nodes[uid] = ManifestNode(
            unique_id=uid,
            resource_type=draw(KINDS),
            package_name=draw(st.sampled_from(["shop", "utils", "a"])),
            name=fqn[-1] if draw(st.booleans()) else draw(WORDS),
            fqn=fqn,
            is_versioned=draw(st.booleans()),
            depends_on=(),
        )
    return Manifest(nodes)


SELECTOR_PARTS = st.one_of(
    WORDS,
    st.builds(lambda a, b: f"{a}.{b}", WORDS, WORDS),
    st.builds(lambda w: f"fqn:{w}", WORDS),
    st.builds(lambda k: f"resource_type:{k}", KINDS),
    st.builds(lambda p: f"package:{p}", st.sampled_from(["shop", "utils", "a"])),
)


@settings(max_examples=400, deadline=None)
@given(manifests(), st.lists(SELECTOR_PARTS, min_size=1, max_size=3))
def test_index_selects_as_the_full_scan(manifest: Manifest, parts: list[str]) -> None:
    selector = Selector.parse(",".join(parts))
    assert _Index(manifest).selects(selector) == selects(selector, manifest)


@settings(max_examples=200, deadline=None)
@given(manifests())
def test_every_candidate_and_choice_agrees(manifest: Manifest) -> None:
    index = _Index(manifest)
    for node in manifest.nodes.values():
        for candidate in _candidates(node):
            assert index.selects(candidate) == selects(candidate, manifest)
    chosen = select_nodes(list(manifest.nodes), manifest)
    for uid, selector in zip(manifest.nodes, chosen.selectors, strict=True):
        if uid not in chosen.inexact:
            assert selects(selector, manifest) == {uid}


def compact(
    ids: list[str], selection: Selection, manifest: Manifest, executes: frozenset[str], indirect: str = "eager"
) -> tuple[str, ...]:
    """`compact`, its selectors as the command's words."""
    return tuple(map(str, compact_selectors(ids, selection, manifest, executes, indirect)))


def groups(wanted: set[str], manifest: Manifest, executes: frozenset[str], indirect: str) -> dict[str, frozenset[str]]:
    """`group_selectors`, keyed by selector text."""
    return {str(s): found for s, found in group_selectors(wanted, manifest, executes, indirect).items()}


def _node(
    uid: str, depends: tuple[str, ...] = (), tags: tuple[str, ...] = (), path: str = "", mat: str = ""
) -> ManifestNode:
    kind, package, name = uid.split(".")[:3]
    return ManifestNode(uid, kind, package, name, (package, name), False, depends, tags, path, mat)


def _shop(source_tags: tuple[str, ...] = ("nightly",), test_tags: tuple[str, ...] = ()) -> Manifest:
    """Two nightly models in models/staging, a source and its test (tagged as given), a package model."""
    nodes = [
        _node("model.shop.a", tags=("nightly",), path="models/staging/a.sql"),
        _node("model.shop.b", tags=("nightly",), path="models/staging/b.sql"),
        _node("model.shop.c", path="models/marts/c.sql"),
        _node("model.utils.d", tags=("nightly",), path="models/staging/d.sql"),
        _node("test.shop.t_src", depends=("source.shop.raw.x",), tags=test_tags, path="models/staging/s.yml"),
    ]
    source = ManifestNode(
        "source.shop.raw.x", "source", "shop", "x", (), False, (), source_tags, "models/staging/s.yml"
    )
    return Manifest({n.unique_id: n for n in nodes}, {source.unique_id: source}, "shop")


def test_groups_never_add_nodes_outside_the_set() -> None:
    wanted = {"model.shop.a", "model.shop.b"}
    build = frozenset({"model", "test", "unit_test", "seed", "snapshot"})
    # eager: `tag:nightly` and `path:models/staging` match the source, whose test is not rerun;
    # the package's model lies in models/staging too, so only the package-qualified forms could do
    assert groups(wanted, _shop(), build, indirect="eager") == {}
    # with indirect selection `empty` the source's test is not added
    found = groups(wanted, _shop(), build, indirect="empty")
    assert found == {"tag:nightly,package:shop": wanted}  # the folder also holds the source's test
    # the source's test itself carries the tag (as dbt gives it): it is matched directly
    tagged = _shop(test_tags=("nightly",))
    assert "tag:nightly,package:shop" not in groups(wanted, tagged, build, indirect="empty")
    # `dbt run` executes no tests
    run = frozenset({"model"})
    assert "tag:nightly,package:shop" in groups(wanted, _shop(), run, indirect="eager")
    # everything nightly is rerun: the shortest form wins, before the per-node selectors
    names = ["model.shop.orders", "model.shop.payments", "model.utils.calendar", "model.shop.customers"]
    nodes = [_node(uid, tags=("nightly",) if i < 3 else ()) for i, uid in enumerate(names)]
    manifest = Manifest({n.unique_id: n for n in nodes})
    assert compact(names, select_nodes(names, manifest), manifest, run) == ("tag:nightly", "customers")
    assert compact(names[:2], select_nodes(names[:2], manifest), manifest, run) == ("orders", "payments")


def test_plus_looks_through_ephemeral_models() -> None:
    nodes = [
        _node("model.shop.a"),
        _node("model.shop.eph", depends=("model.shop.a",), mat="ephemeral"),
        _node("model.shop.b", depends=("model.shop.eph",)),
        _node("model.shop.c", depends=("model.shop.b",)),
    ]
    manifest = Manifest({n.unique_id: n for n in nodes})
    ids = ["model.shop.a", "model.shop.b", "model.shop.c"]
    assert compact(ids, select_nodes(ids, manifest), manifest, frozenset({"model"})) == ("a+",)


def test_a_group_covers_the_tests_of_its_models_only_under_eager_indirect_selection() -> None:
    # The model lies in models/staging/deep, its test is defined in models/schema.yml: `path:` matches
    # the model alone; only eager indirect selection surely brings its test along.
    nodes = [
        _node("model.gen.m_0", path="models/staging/deep/m_0.sql"),
        _node("model.gen.m_1", path="models/staging/deep/m_1.sql"),
        _node("test.gen.not_null_m_0_id", depends=("model.gen.m_0",), path="models/schema.yml"),
        _node("test.gen.not_null_m_1_id", depends=("model.gen.m_1",), path="models/schema.yml"),
        _node("model.gen.other", path="models/other.sql"),  # not rerun: `path:models` would add it
    ]
    manifest = Manifest({n.unique_id: n for n in nodes}, project_name="gen")
    ids = [n.unique_id for n in nodes[:4]]
    build = frozenset({"model", "test", "unit_test", "seed", "snapshot"})
    found = groups(set(ids), manifest, build, indirect="eager")
    assert found["path:models/staging/deep"] == set(ids)
    assert compact(ids, select_nodes(ids, manifest), manifest, build, "eager") == ("path:models/staging",)
    for mode in ("empty", "cautious", "buildable"):
        found = groups(set(ids), manifest, build, indirect=mode)
        assert found["path:models/staging/deep"] == {"model.gen.m_0", "model.gen.m_1"}, mode
        selectors = compact(ids, select_nodes(ids, manifest), manifest, build, mode)
        assert selectors == ("m_0+", "m_1+"), (mode, selectors)  # not the group alone: the tests would be lost
