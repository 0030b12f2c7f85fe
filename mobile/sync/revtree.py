"""CouchDB revision trees as pure data: rev ids, merging, the winning revision, conflicts, stemming.

No I/O here; `mobile.sync.store` persists trees in SQLite and the replicator moves them.

A tree maps every known revision ``"<generation>-<32 hex>"`` to its parent (``None`` for a root,
which is either the first revision or the oldest one kept after stemming) and its deleted flag.
A leaf is a revision that no other revision names as its parent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# CouchDB's default `_revs_limit`; the tablet keeps at least this much history so a path coming back
# from the server always overlaps (a path that no longer overlaps becomes a false conflict).
DEFAULT_REVS_LIMIT = 1000


@dataclass(slots=True)
class RevNode:
    """One revision in a tree: its parent (None for a root) and whether it is a tombstone."""

    parent: str | None
    deleted: bool


RevTree = dict[str, RevNode]


def parse_rev(rev: str) -> tuple[int, str]:
    """Split ``"3-abc"`` into ``(3, "abc")``; raise ValueError on anything else."""
    gen_text, sep, rev_hash = rev.partition("-")
    if not sep or not rev_hash or not gen_text.isdigit() or int(gen_text) < 1:
        raise ValueError(f"invalid revision {rev!r}: expected '<generation>-<id>' with generation >= 1")
    return int(gen_text), rev_hash


def generation(rev: str) -> int:
    """The generation (the number before the dash) of a revision."""
    return parse_rev(rev)[0]


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no whitespace: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def new_rev(
    parent: str | None, *, deleted: bool, body: Mapping[str, Any], attachment_digests: Mapping[str, str]
) -> str:
    """The next revision id: md5 over canonical JSON of parent, deleted flag, body and attachment digests.

    Deterministic, so two devices making the identical edit offline produce the identical revision
    and replication merges them instead of making a conflict. `body` must exclude ``_``-fields.
    """
    gen = generation(parent) + 1 if parent else 1
    material = canonical_json([parent or "", deleted, body, sorted(attachment_digests.items())])
    return f"{gen}-{hashlib.md5(material).hexdigest()}"


def leaves(tree: Mapping[str, RevNode]) -> list[str]:
    """Revisions nobody has as a parent, in no particular order."""
    parents = {node.parent for node in tree.values() if node.parent is not None}
    return [rev for rev in tree if rev not in parents]


def winner_key(rev: str, deleted: bool) -> tuple[bool, int, str]:
    """Sort key CouchDB uses to pick the winner: live before deleted, then generation, then id."""
    gen, rev_hash = parse_rev(rev)
    return (not deleted, gen, rev_hash)


def winning_rev(tree: Mapping[str, RevNode]) -> str:
    """The revision CouchDB would show: the highest leaf by (not deleted, generation, rev id)."""
    if not tree:
        raise ValueError("an empty revision tree has no winner")
    return max(leaves(tree), key=lambda rev: winner_key(rev, tree[rev].deleted))


def conflicts(tree: Mapping[str, RevNode]) -> tuple[list[str], list[str]]:
    """``(_conflicts, _deleted_conflicts)``: the non-winning live and deleted leaves, highest first."""
    win = winning_rev(tree)
    others = sorted(
        (rev for rev in leaves(tree) if rev != win),
        key=lambda rev: winner_key(rev, tree[rev].deleted),
        reverse=True,
    )
    return [r for r in others if not tree[r].deleted], [r for r in others if tree[r].deleted]


def ancestry(tree: Mapping[str, RevNode], rev: str, limit: int | None = None) -> list[str]:
    """The path from `rev` back towards its root, newest first, at most `limit` revisions."""
    path: list[str] = []
    current: str | None = rev
    while current is not None and current in tree and (limit is None or len(path) < limit):
        path.append(current)
        current = tree[current].parent
    return path


def revisions_field(tree: Mapping[str, RevNode], rev: str, limit: int | None = None) -> dict[str, Any]:
    """The ``_revisions`` object replication sends: ``{"start": gen, "ids": [hash, parent hash, ...]}``."""
    path = ancestry(tree, rev, limit)
    return {"start": generation(rev), "ids": [parse_rev(r)[1] for r in path]}


def path_from_revisions(revisions: Mapping[str, Any]) -> list[str]:
    """Full revision ids, newest first, from a ``_revisions`` object; raise ValueError if malformed."""
    start = revisions.get("start")
    ids = revisions.get("ids")
    if not isinstance(start, int) or not isinstance(ids, list) or not ids or start - len(ids) + 1 < 1:
        raise ValueError(f"invalid _revisions {revisions!r}")
    return [f"{start - i}-{rev_hash}" for i, rev_hash in enumerate(ids)]


def merge_path(tree: RevTree, path: Sequence[str], *, deleted: bool) -> bool:
    """Graft a revision path (newest first, as in ``_revisions``) into `tree` in place.

    The newest revision gets `deleted`; revisions already present keep their flags. Where the tree
    was stemmed shorter than the path, the path's older revisions extend the root downwards. A path
    that shares no revision with the tree becomes a new root (CouchDB does the same; after stemming
    this shows as a false conflict, hence generous revision limits). Returns True when the newest
    revision was new to the tree.
    """
    if not path:
        raise ValueError("an empty revision path")
    added = path[0] not in tree
    for i, rev in enumerate(path):
        parent = path[i + 1] if i + 1 < len(path) else None
        node = tree.get(rev)
        if node is None:
            tree[rev] = RevNode(parent=parent, deleted=deleted if i == 0 else False)
        elif node.parent is None and parent is not None:
            node.parent = parent  # the tree had been stemmed below this revision; the path knows more
        else:
            break  # from here down the tree already has this history
    return added


def stem(tree: RevTree, limit: int) -> set[str]:
    """Keep only the newest `limit` revisions of every root-to-leaf path, in place; return the removed ones."""
    if limit < 1:
        raise ValueError(f"revs_limit must be at least 1, got {limit}")
    keep: set[str] = set()
    for leaf in leaves(tree):
        keep.update(ancestry(tree, leaf, limit))
    removed = set(tree) - keep
    for rev in removed:
        del tree[rev]
    for node in tree.values():
        if node.parent is not None and node.parent not in tree:
            node.parent = None
    return removed


def missing_revs(tree: Mapping[str, RevNode], revs: Iterable[str]) -> list[str]:
    """Which of `revs` the tree does not hold (the answer `_revs_diff` gives per document)."""
    return [rev for rev in revs if rev not in tree]


def possible_ancestors(tree: Mapping[str, RevNode], missing: Iterable[str]) -> list[str]:
    """Leaves with a lower generation than some missing revision: what the source may base stubs on."""
    top = max((generation(r) for r in missing), default=0)
    return sorted(rev for rev in leaves(tree) if generation(rev) < top)


def dumps_tree(tree: Mapping[str, RevNode]) -> str:
    """Compact JSON for storage: ``{rev: [parent, deleted]}``."""
    return json.dumps({rev: [n.parent, n.deleted] for rev, n in tree.items()}, separators=(",", ":"))


def loads_tree(text: str) -> RevTree:
    """Inverse of `dumps_tree`."""
    raw: dict[str, list[Any]] = json.loads(text)
    return {rev: RevNode(parent=v[0], deleted=bool(v[1])) for rev, v in raw.items()}
