"""Node selectors that make dbt run exactly a given set of nodes.

The matching rules below restate dbt-core's documented selection semantics (the default `fqn`
method, the `resource_type:`, `package:`, `tag:` and `path:` methods, and `,` intersection) so that every selector
can be checked against the step's manifest before it is sent. Selectors are `Selector`s (restart/selector.py)
throughout: built, matched and measured as data, rendered only into the narrowed command.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass

from restart.artifacts import Manifest, ManifestNode
from restart.dbt_vocabulary import EPHEMERAL, NAMED_BY_FILE, TEST_PREFIXES, TESTS, ResourceType
from restart.dbt_vocabulary import IndirectSelection as Indirect
from restart.graph import descendants
from restart.selector import Criterion, Method, Selector


@dataclass(frozen=True)
class Selection:
    """Selectors for a set of nodes and whether each one was proven exact."""

    selectors: tuple[Selector, ...]
    inexact: tuple[str, ...]  # unique_ids whose selector may also select other nodes


def _leaf_matches(fqn: tuple[str, ...], selector: str, is_versioned: bool) -> bool:
    """dbt's fqn match of one (wildcard-free) selector against one fqn."""
    if not fqn:
        return False
    parts = selector.split(".")
    if is_versioned and len(fqn) >= 2:
        if fqn[-2] == selector or "_".join(fqn[-2:]) == "_".join(parts[-2:]):
            return True
    elif fqn[-1] == selector:
        return True
    flat = [piece for segment in fqn for piece in segment.split(".")]
    return len(flat) >= len(parts) and all(flat[i] == part for i, part in enumerate(parts))


def fqn_matches(selector: str, node: ManifestNode) -> bool:
    """Whether a method-less selector picks `node` (scoped, or with the package left out)."""
    return _leaf_matches(node.fqn, selector, node.is_versioned) or _leaf_matches(
        node.fqn[1:], selector, node.is_versioned
    )


def in_folder(path: str, folder: str) -> bool:
    """Whether dbt's `path:folder` matches a node at `path` (the folder itself, or anything below it)."""
    return bool(path) and (path == folder or path.startswith(folder + "/"))


def _part_matches(part: Criterion, node: ManifestNode) -> bool:
    method, value = part.method, part.value
    if part.by_fqn:
        return fqn_matches(value, node)
    if method == Method.RESOURCE_TYPE:
        return node.resource_type == value
    if method == Method.PACKAGE:
        return node.package_name == value
    if method == Method.TAG:
        return value in node.tags
    if method == Method.PATH:
        return in_folder(node.path, value)
    if method == Method.FILE:  # dbt 1.6+: the file's name or its stem
        name = node.path.rsplit("/", 1)[-1]
        return bool(name) and value in (name, name.rsplit(".", 1)[0])
    raise ValueError(f"selector method {method!r} is not modelled")


def selects(selector: Selector, manifest: Manifest) -> set[str]:
    """The unique_ids an intersection selector (`a,b,c`, its graph operator aside) picks among the manifest's nodes."""
    parts = selector.criteria
    return {uid for uid, node in manifest.nodes.items() if all(_part_matches(p, node) for p in parts)}


_JOINED = "\x00"  # marks index keys made of a versioned fqn's last two parts joined by `_`


def _index_keys(fqn: tuple[str, ...]) -> set[str]:
    """Every value a method-less selector must equal (in one of its parts) to match this fqn."""
    keys = {fqn[-1]}
    if len(fqn) >= 2:
        keys.add(fqn[-2])
        keys.add(_JOINED + "_".join(fqn[-2:]))
    keys.add(fqn[0].split(".")[0])
    if len(fqn) >= 2:
        keys.add(fqn[1].split(".")[0])
    return keys


class _Index:
    """The manifest's nodes by the fqn pieces a selector can match on, so a selector is checked
    against the few nodes that could match it instead of all of them (same answers as `selects`)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.by_key: dict[str, list[str]] = {}
        for uid, node in manifest.nodes.items():
            if node.fqn:
                for key in _index_keys(node.fqn):
                    self.by_key.setdefault(key, []).append(uid)

    def _could_match(self, value: str) -> set[str]:
        parts = value.split(".")
        found: set[str] = set()
        for key in (value, parts[0], _JOINED + "_".join(parts[-2:])):
            found.update(self.by_key.get(key, ()))
        return found

    def selects(self, selector: Selector) -> set[str]:
        parts = selector.criteria
        pool: set[str] | None = None
        for part in parts:
            if part.by_fqn:
                could = self._could_match(part.value)
                pool = could if pool is None else pool & could
        if pool is None:
            return selects(selector, self.manifest)
        nodes = self.manifest.nodes
        return {uid for uid in pool if all(_part_matches(p, nodes[uid]) for p in parts)}


def _name_from_id(unique_id: str) -> tuple[str, str, str]:
    """(resource_type, package, name) read off a unique_id, versions as `name.vN`."""
    parts = unique_id.split(".")
    resource_type, package = parts[0], parts[1] if len(parts) > 1 else ""
    if resource_type == ResourceType.MODEL and len(parts) == 4:
        return resource_type, package, f"{parts[2]}.{parts[3]}"
    if resource_type == ResourceType.UNIT_TEST and len(parts) >= 4:
        return resource_type, package, parts[3]
    return resource_type, package, parts[2] if len(parts) > 2 else unique_id


def _candidates(node: ManifestNode) -> Iterable[Selector]:
    """Selectors for `node`, shortest first; each includes the node itself."""
    name = ".".join(node.fqn[-2:]) if node.is_versioned else node.name
    full = ".".join(node.fqn)
    kind = Criterion(Method.RESOURCE_TYPE, node.resource_type)
    package = Criterion(Method.PACKAGE, node.package_name)
    for base in (Selector.of(name), Selector.of(full)):
        yield base
        yield base.intersect(kind)
        yield base.intersect(package)
        yield base.intersect(kind).intersect(package)


def select_nodes(unique_ids: Iterable[str], manifest: Manifest | None, *, by_file: bool = True) -> Selection:
    """One selector per node: the shortest one the manifest proves exact.

    Without a manifest (or for a node it lacks) an unversioned model or seed is selected by its file
    (exact) when `by_file` (the engine's `file:` matches stems: dbt 1.6+); any other node by its name,
    resource type and package: that always selects the node on every dbt version, and may select more.
    """
    selectors: list[Selector] = []
    inexact: list[str] = []
    index = _Index(manifest) if manifest is not None else None
    for uid in unique_ids:
        node = manifest.nodes.get(uid) if manifest else None
        chosen = None
        if node is not None and index is not None:
            chosen = next((c for c in _candidates(node) if index.selects(c) == {uid}), None)
        if chosen is None:
            resource_type, package, name = _name_from_id(uid)
            if by_file and resource_type in NAMED_BY_FILE and uid.count(".") == 2:
                # An unversioned model's or seed's file is named after it, and its name is unique in its
                # package: dbt's `file:` method (since 1.5) picks it alone, no manifest needed.
                owner = ((Method.RESOURCE_TYPE, resource_type), (Method.PACKAGE, package))
                chosen = Selector.of((Method.FILE, name), *owner)
            else:
                chosen = Selector.of(name, (Method.RESOURCE_TYPE, resource_type), (Method.PACKAGE, package))
                inexact.append(uid)
        selectors.append(chosen)
    return Selection(tuple(selectors), tuple(inexact))


def selects_nothing(selectors: Iterable[Selector], manifest: Manifest, executes: frozenset[str] | None) -> bool:
    """Whether the manifest proves that these selectors make the command execute no node at all.

    A selector whose method is not modelled here counts as selecting something (nothing is proven);
    `name+` counts for `name` (its descendants only add).
    """
    index = _Index(manifest)
    for selector in selectors:
        try:
            picked = index.selects(selector)
        except ValueError:
            return False
        if any(executes_node(manifest.nodes[uid], executes) or selector.children for uid in picked):
            return False
    return True


def pulls_in_tests(unique_ids: Iterable[str], manifest: Manifest | None) -> bool:
    """Whether selecting these nodes in `build`/`test` would add tests outside the set.

    dbt's default (eager) indirect selection adds every test that depends on a selected node;
    without a manifest the answer is assumed to be yes.
    """
    chosen = set(unique_ids)
    if manifest is None:
        return any(not uid.startswith(TEST_PREFIXES) for uid in chosen)
    return any(
        node.resource_type in TESTS and uid not in chosen and any(dep in chosen for dep in node.depends_on)
        for uid, node in manifest.nodes.items()
    )


# Tag and folder names used in group selectors: no glob characters (dbt matches both by pattern), no
# graph operators, commas or spaces; folders with no hidden or parent segments.
_SAFE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
_SAFE_FOLDER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*(/[A-Za-z0-9_][A-Za-z0-9_-]*)*\Z")


def _folders(path: str) -> list[str]:
    """The folders `path` lies in, outermost first (`models`, `models/staging`), not the project root."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def executes_node(node: ManifestNode, executes: frozenset[str] | None) -> bool:
    """Whether a command executing `executes` (None: any type) runs this node when selected."""
    if node.resource_type == ResourceType.MODEL and node.materialized == EPHEMERAL:
        return False
    return executes is None or node.resource_type in executes


def group_selectors(
    wanted: set[str], manifest: Manifest, executes: frozenset[str] | None, indirect: str
) -> dict[Selector, frozenset[str]]:
    """`tag:`/`path:` selectors that make the command execute only nodes of `wanted`: what each surely runs.

    dbt's `tag` method matches any resource's tags (tests, sources and exposures too), its `path`
    method any resource whose original_file_path lies in that folder of the root project (in any
    package: the path is relative to the node's own package). A group is kept only when the nodes the
    command may then execute (ephemeral models never; with `indirect` selection other than `empty`,
    also any test or unit test of a node it matches) are all in `wanted`. What it surely executes, the
    nodes it covers, counts those tests only under `eager` indirect selection (`cautious` and
    `buildable` take a test only when all its parents are selected). Matching anything else than an
    executable node or a source (an exposure, a metric, a function, a hook) rules it out.
    """
    if manifest.opaque:
        return {}
    every = {**manifest.others, **manifest.nodes}
    by_tag: dict[str, set[str]] = {}
    by_folder: dict[str, set[str]] = {}
    for uid, node in every.items():
        for tag in node.tags:
            by_tag.setdefault(tag, set()).add(uid)
        for folder in _folders(node.path):
            by_folder.setdefault(folder, set()).add(uid)
    root_folders = {
        folder
        for node in every.values()
        if node.package_name == manifest.project_name
        for folder in _folders(node.path)
    }
    tests_of: dict[str, set[str]] = {}
    for uid, node in manifest.nodes.items():
        if node.resource_type in TESTS:
            for parent in node.depends_on:
                tests_of.setdefault(parent, set()).add(uid)

    def executed(uids: set[str]) -> frozenset[str]:
        return frozenset(uid for uid in uids if uid in manifest.nodes and executes_node(manifest.nodes[uid], executes))

    def reach_of(matched: set[str]) -> tuple[frozenset[str], frozenset[str]] | None:
        """What a selector matching `matched` may and surely executes; None when it matches something unmodelled."""
        if any(uid not in manifest.nodes and every[uid].resource_type != ResourceType.SOURCE for uid in matched):
            return None
        tests = {test for uid in matched for test in tests_of.get(uid, set())} if indirect != Indirect.EMPTY else set()
        surely = executed(matched | tests) if indirect == Indirect.EAGER else executed(matched)
        return executed(matched | tests), surely

    bases: dict[Selector, set[str]] = {}
    packages: dict[Selector, set[str]] = {}
    for uid in sorted(wanted):
        member = manifest.nodes.get(uid)
        if member is None or not executes_node(member, executes):
            continue
        for tag in member.tags:
            if _SAFE_TAG.match(tag):
                group = Selector.of((Method.TAG, tag))
                bases.setdefault(group, by_tag[tag])
                packages.setdefault(group, set()).add(member.package_name)
        if manifest.project_name:
            for folder in _folders(member.path):
                if folder in root_folders and _SAFE_FOLDER.match(folder):
                    group = Selector.of((Method.PATH, folder))
                    bases.setdefault(group, by_folder[folder])
                    packages.setdefault(group, set()).add(member.package_name)
    found: dict[Selector, frozenset[str]] = {}
    for selector, matched in bases.items():
        reached = reach_of(matched)
        if reached is not None and reached[1] and reached[0] <= wanted:
            found[selector] = reached[1]
            continue
        for package in sorted(packages[selector]):  # the same group within one package
            if not _SAFE_TAG.match(package):
                continue
            reached = reach_of({uid for uid in matched if every[uid].package_name == package})
            if reached is not None and reached[1] and reached[0] <= wanted:
                found[selector.intersect(Criterion(Method.PACKAGE, package))] = reached[1]
    return found


def _length(selector: Selector) -> int:
    """What a selector adds to the command: its text and the space before it."""
    return len(str(selector)) + 1


def compact(
    unique_ids: Iterable[str],
    selection: Selection,
    manifest: Manifest | None,
    executes: frozenset[str] | None,
    indirect: str = Indirect.EAGER,
) -> tuple[Selector, ...]:
    """Shorter selectors for the same nodes: `name+`, `tag:` and `path:` groups that add nothing.

    `name+` is used only when `name` alone is proven to select just that node, and every
    descendant the command would execute (`executes`: resource types; None: any; ephemeral models
    never) is in the set, so the graph operator adds nothing. A `tag:`/`path:` group is used only
    when what the command would execute through it is in the set (`group_selectors`). Among these,
    the ones that shorten the command most are taken, greedily (ties by selector text), and the
    nodes they cover drop their own selectors; each sits where its first node was.

    The narrowed command's indirect selection is `empty` exactly when the planner sets it: a `build`
    or `test` (a command executing tests) whose set would pull in other tests; otherwise the step's
    own setting, `indirect` (`eager`, dbt's default, `cautious`, `buildable` or `empty`).

    TODO: with the manifest's `sources` (now in `Manifest.others`), the `hidden` check below could
    be exact instead of conservative.
    """
    ids = list(unique_ids)
    if manifest is None or len(ids) < 2:
        return selection.selectors
    wanted = set(ids)
    below = descendants(manifest)
    # Nodes the manifest lists only as parents (sources, ...): their names, which a bare selector may match.
    hidden = {
        part
        for node in manifest.nodes.values()
        for parent in node.depends_on
        if parent not in manifest.nodes
        for part in parent.split(".")[1:]
    }

    def command_executes(uid: str) -> bool:
        """Whether the step's command would execute `uid` when it is selected."""
        node = manifest.nodes.get(uid)
        return node is not None and executes_node(node, executes)

    position = {uid: i for i, uid in enumerate(ids)}
    own = {uid: _length(selector) for uid, selector in zip(ids, selection.selectors, strict=True)}
    options: dict[Selector, frozenset[str]] = {}
    for uid, selector in zip(ids, selection.selectors, strict=True):
        name = selector.single
        if name is None or uid in selection.inexact:
            continue
        if name.value.split(".")[0] in hidden:
            continue  # `name+` would also follow a source (or another unlisted node) of that name
        reach = {d for d in below.get(uid, set()) if command_executes(d)}
        if reach and reach <= wanted:
            options[selector.with_children()] = frozenset(reach | {uid})
    planner_empty = executes is not None and bool(executes & TESTS) and pulls_in_tests(ids, manifest)
    options.update(group_selectors(wanted, manifest, executes, Indirect.EMPTY if planner_empty else indirect.lower()))

    covered: set[str] = set()

    def saving(selector: Selector) -> int:
        return sum(own[uid] for uid in options[selector] if uid not in covered) - _length(selector)

    chosen: list[Selector] = []
    # Ties by selector text; a text names one selector, so the third items are never compared.
    heap = [(-saving(selector), str(selector), selector) for selector in options]
    heapq.heapify(heap)
    while heap:  # lazy greedy: a selector's saving only shrinks as others are chosen
        stale, text, selector = heapq.heappop(heap)
        now = saving(selector)
        if now <= 0:
            continue
        if now != -stale:
            heapq.heappush(heap, (-now, text, selector))
            continue
        chosen.append(selector)
        covered |= options[selector]
    at: dict[str, list[Selector]] = {}
    for selector in chosen:
        first = min((uid for uid in options[selector] if uid in position), key=position.__getitem__)
        at.setdefault(first, []).append(selector)
    result: list[Selector] = []
    for uid, selector in zip(ids, selection.selectors, strict=True):
        result += at.get(uid, [])
        if uid not in covered:
            result.append(selector)
    return tuple(result)
