"""The git repository the local dbt Cloud's runs clone: `main` is tests/dbt_project as it is, other
branches and commits lay changed files over it.

dbt Cloud clones the environment's branch (here `main`) at the start of every run; a trigger's
`git_branch` clones that branch's newest commit instead and its `git_sha` checks out that commit.
A branch or commit the repository does not have fails the clone step, and with it the run.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_BRANCH = "main"


class CheckoutError(Exception):
    """The run asked for a branch or commit the repository does not have (the clone step fails)."""


@dataclass(frozen=True)
class Commit:
    """A commit: its sha, its parent, and the files it changes over its parent (None: deleted)."""

    sha: str
    parent: str | None
    changes: Mapping[str, str | None] = field(default_factory=dict)


class Repository:
    """Branches and commits over the dbt project; `root_sha` names the project as it is (main's first commit)."""

    def __init__(self, root_sha: Callable[[], str]) -> None:
        self._root_sha = root_sha
        self._lock = threading.Lock()
        self.commits: dict[str, Commit] = {}
        self.branches: dict[str, str] = {}  # branch -> its newest commit

    def _ensure_root(self) -> None:
        if not self.branches:
            root = Commit(self._root_sha(), None)
            self.commits[root.sha] = root
            self.branches[DEFAULT_BRANCH] = root.sha

    def commit(self, branch: str, changes: Mapping[str, str | None]) -> str:
        """Commit `changes` on `branch` (a new branch starts from main's newest commit); the new sha."""
        with self._lock:
            self._ensure_root()
            parent = self.branches.get(branch, self.branches[DEFAULT_BRANCH])
            digest = hashlib.sha1(usedforsecurity=False)
            digest.update(json.dumps([parent, branch, sorted(changes.items(), key=lambda kv: kv[0])]).encode())
            commit = Commit(digest.hexdigest(), parent, dict(changes))
            self.commits[commit.sha] = commit
            self.branches[branch] = commit.sha
            return commit.sha

    def head(self, branch: str = DEFAULT_BRANCH) -> str:
        """The newest commit of `branch` (CheckoutError when there is no such branch)."""
        with self._lock:
            self._ensure_root()
            if branch not in self.branches:
                raise CheckoutError(f"Failed to clone repository: branch '{branch}' not found in the remote")
            return self.branches[branch]

    def checkout(self, branch: str | None, sha: str | None) -> tuple[str, str, dict[str, str | None]]:
        """(branch, sha, the files changed over the project) a clone for a run with this trigger gets."""
        branch = branch or DEFAULT_BRANCH
        head = self.head(branch)
        with self._lock:
            wanted = sha or head
            if wanted not in self.commits:
                raise CheckoutError(f"Failed to checkout commit {wanted}: reference is not a tree")
            chain: list[Commit] = []
            at: str | None = wanted
            while at is not None:
                chain.append(self.commits[at])
                at = self.commits[at].parent
        files: dict[str, str | None] = {}
        for commit in reversed(chain):
            files.update(commit.changes)
        return branch, wanted, files
