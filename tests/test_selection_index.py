"""The selection index answers exactly as the full scan over the manifest does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from restart.artifacts import Manifest, ManifestNode
from restart.selection import _candidates, _Index, select_nodes, selects

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
    selector = ",".join(parts)
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
