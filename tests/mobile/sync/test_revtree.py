"""Pure revision-tree rules: rev ids, winner, conflicts, merging and stemming (no store, no server)."""

from __future__ import annotations

import pytest

from mobile.sync import revtree
from mobile.sync.revtree import RevNode


def chain(*revs: str, deleted_last: bool = False) -> dict[str, RevNode]:
    """A linear tree from the oldest to the newest revision."""
    tree: dict[str, RevNode] = {}
    parent = None
    for i, rev in enumerate(revs):
        tree[rev] = RevNode(parent=parent, deleted=deleted_last and i == len(revs) - 1)
        parent = rev
    return tree


def test_new_rev_is_deterministic_and_32_hex():
    """The same parent, body and attachments give the same 32-hex revision (offline edits converge)."""
    a = revtree.new_rev("1-aa", deleted=False, body={"x": 1, "y": [1, 2]}, attachment_digests={})
    b = revtree.new_rev("1-aa", deleted=False, body={"y": [1, 2], "x": 1}, attachment_digests={})
    gen, rev_hash = revtree.parse_rev(a)
    assert a == b and gen == 2 and len(rev_hash) == 32 and int(rev_hash, 16) >= 0
    assert a != revtree.new_rev("1-aa", deleted=True, body={"x": 1, "y": [1, 2]}, attachment_digests={})
    assert a != revtree.new_rev(
        "1-aa", deleted=False, body={"x": 1, "y": [1, 2]}, attachment_digests={"p": "md5-x"}
    )


@pytest.mark.parametrize("bad", ["", "abc", "0-abc", "x-abc", "3-", "-abc"])
def test_parse_rev_rejects_malformed(bad: str):
    """A revision must be '<generation >= 1>-<id>'; anything else is a ValueError naming it."""
    with pytest.raises(ValueError, match="invalid revision"):
        revtree.parse_rev(bad)


def test_winner_is_highest_generation_then_highest_id():
    """Among live leaves the higher generation wins; at equal generation the greater rev id string wins."""
    tree = chain("1-a", "2-b")
    tree["2-c"] = RevNode(parent="1-a", deleted=False)
    assert revtree.winning_rev(tree) == "2-c"
    tree["3-a"] = RevNode(parent="2-b", deleted=False)
    assert revtree.winning_rev(tree) == "3-a"
    assert revtree.conflicts(tree) == (["2-c"], [])


def test_live_leaf_beats_a_longer_deleted_branch():
    """A deleted leaf never wins over a live one, however long its branch: an edit revives a delete."""
    tree = chain("1-a", "2-b", "3-c", "4-d", deleted_last=True)
    tree["2-z"] = RevNode(parent="1-a", deleted=False)
    assert revtree.winning_rev(tree) == "2-z"
    assert revtree.conflicts(tree) == ([], ["4-d"])


def test_all_deleted_picks_the_highest_tombstone():
    """When every leaf is deleted the document is deleted and the highest tombstone is the winner."""
    tree = chain("1-a", "2-b", deleted_last=True)
    tree["3-x"] = RevNode(parent="2-q", deleted=True)
    tree["2-q"] = RevNode(parent="1-a", deleted=False)
    assert revtree.winning_rev(tree) == "3-x"
    assert tree[revtree.winning_rev(tree)].deleted


def test_merge_extends_and_branches():
    """A path sharing history grafts onto it; a concurrent one becomes a second leaf."""
    tree = chain("1-a", "2-b")
    assert revtree.merge_path(tree, ["3-c", "2-b", "1-a"], deleted=False)
    assert not revtree.merge_path(tree, ["3-c", "2-b"], deleted=False)  # idempotent
    assert revtree.merge_path(tree, ["3-d", "2-b"], deleted=True)
    assert sorted(revtree.leaves(tree)) == ["3-c", "3-d"]
    assert tree["3-d"].parent == "2-b" and tree["3-d"].deleted


def test_merge_order_does_not_change_the_winner():
    """Two stores receiving the same revisions in any order agree on leaves and winner."""
    paths = [(["2-b", "1-a"], False), (["2-c", "1-a"], False), (["3-d", "2-b", "1-a"], True)]
    trees = []
    for order in (paths, list(reversed(paths)), [paths[1], paths[2], paths[0]]):
        tree: dict[str, RevNode] = {}
        for path, deleted in order:
            revtree.merge_path(tree, path, deleted=deleted)
        trees.append(tree)
    assert {revtree.winning_rev(t) for t in trees} == {"2-c"}
    assert {tuple(sorted(revtree.leaves(t))) for t in trees} == {("2-c", "3-d")}


def test_stem_keeps_last_n_of_every_path():
    """Stemming keeps the newest N revisions on each path; the oldest kept become roots."""
    tree = chain("1-a", "2-b", "3-c", "4-d", "5-e")
    tree["3-x"] = RevNode(parent="2-b", deleted=False)
    removed = revtree.stem(tree, 2)
    assert removed == {"1-a", "3-c"}
    assert tree["2-b"].parent is None and tree["4-d"].parent is None
    assert revtree.ancestry(tree, "5-e") == ["5-e", "4-d"]
    assert revtree.ancestry(tree, "3-x") == ["3-x", "2-b"]


def test_merge_into_stemmed_tree_with_overlap_has_no_false_conflict():
    """A longer incoming path that overlaps a stemmed tree attaches below it: one leaf, no conflict."""
    tree = chain("1-a", "2-b", "3-c", "4-d")
    revtree.stem(tree, 2)  # keeps 3-c, 4-d
    revtree.merge_path(tree, ["5-e", "4-d", "3-c", "2-b", "1-a"], deleted=False)
    assert revtree.leaves(tree) == ["5-e"]
    assert revtree.conflicts(tree) == ([], [])


def test_merge_without_overlap_makes_a_false_conflict():
    """A path sharing no revision with a stemmed tree becomes a new root: why revs limits stay generous."""
    tree = chain("5-e", "6-f")
    revtree.merge_path(tree, ["3-c", "2-b"], deleted=False)
    assert sorted(revtree.leaves(tree)) == ["3-c", "6-f"]
    assert revtree.winning_rev(tree) == "6-f"


def test_revisions_field_round_trips_through_path():
    """`_revisions` built from a tree turns back into the same path."""
    tree = chain("1-a", "2-b", "3-c")
    field = revtree.revisions_field(tree, "3-c")
    assert field == {"start": 3, "ids": ["c", "b", "a"]}
    assert revtree.path_from_revisions(field) == ["3-c", "2-b", "1-a"]
    assert revtree.revisions_field(tree, "3-c", limit=2) == {"start": 3, "ids": ["c", "b"]}
    with pytest.raises(ValueError):
        revtree.path_from_revisions({"start": 1, "ids": ["a", "b"]})


def test_tree_serialisation_round_trip():
    """Trees survive the JSON used in SQLite unchanged."""
    tree = chain("1-a", "2-b", deleted_last=True)
    assert revtree.loads_tree(revtree.dumps_tree(tree)) == tree


def test_possible_ancestors_are_lower_generation_leaves():
    """possible_ancestors lists the target's leaves below the missing revision's generation."""
    tree = chain("1-a", "2-b")
    assert revtree.possible_ancestors(tree, ["3-c"]) == ["2-b"]
    assert revtree.possible_ancestors(tree, ["2-x"]) == []
