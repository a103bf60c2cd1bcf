"""Walks of a manifest's node graph (`depends_on`): below some nodes, below each node, nearest parents. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from restart.artifacts import Manifest

GRAPH_WALK = 200  # nodes looked at per node when finding its nearest parents (the summary's failure region)


def children_of(manifest: Manifest) -> dict[str, set[str]]:
    """Each node's direct children (the nodes that depend on it)."""
    children: dict[str, set[str]] = {uid: set() for uid in manifest.nodes}
    for uid, node in manifest.nodes.items():
        for parent in node.depends_on:
            children.setdefault(parent, set()).add(uid)
    return children


def descendants_of(manifest: Manifest, roots: Iterable[str]) -> set[str]:
    """Every node below any of `roots` in the manifest's graph (a root only when it is below another)."""
    children = children_of(manifest)
    below: set[str] = set()
    queue = list(roots)
    while queue:
        for child in children.get(queue.pop(), ()):
            if child not in below:
                below.add(child)
                queue.append(child)
    return below


def descendants(manifest: Manifest) -> dict[str, set[str]]:
    """Each node's descendants in the manifest's graph (what `node+` adds to it).

    Iterative (post-order) so that a chain of thousands of models does not hit Python's recursion limit.
    """
    children = children_of(manifest)
    found: dict[str, set[str]] = {}
    for start in manifest.nodes:
        stack = [(start, False)]
        while stack:
            uid, expanded = stack.pop()
            if uid in found:
                continue
            if expanded:
                below: set[str] = set()
                for child in children.get(uid, ()):
                    below |= {child} | found.get(child, set())
                found[uid] = below
                continue
            stack.append((uid, True))
            stack.extend((child, False) for child in children.get(uid, ()) if child not in found)
    return found


def nearest_parents(manifest: Manifest, unique_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each node's nearest parents among `unique_ids`, looking through nodes outside them (an ephemeral
    model, say); for the summary's failure region."""
    wanted = list(unique_ids)
    within = set(wanted)

    def nearest(uid: str) -> tuple[str, ...]:
        found: list[str] = []
        queue, seen = list(manifest.nodes[uid].depends_on), {uid}
        while queue and len(seen) < GRAPH_WALK:
            parent = queue.pop(0)
            if parent in seen:
                continue
            seen.add(parent)
            if parent in within:
                found.append(parent)
            elif parent in manifest.nodes:
                queue.extend(manifest.nodes[parent].depends_on)
        return tuple(found)

    return {uid: nearest(uid) for uid in wanted if uid in manifest.nodes}
