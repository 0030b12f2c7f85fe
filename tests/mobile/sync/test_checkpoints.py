"""Replication ids and where a run resumes, given both sides' checkpoint documents (pure)."""

from __future__ import annotations

from mobile.sync.replicator import compare_logs, replication_id


def log(session: str, seq: object, *history: tuple[str, object]) -> dict[str, object]:
    """A checkpoint document with its history, newest first."""
    entries = [{"session_id": session, "recorded_seq": seq}] + [
        {"session_id": s, "recorded_seq": q} for s, q in history
    ]
    return {"session_id": session, "source_last_seq": seq, "history": entries}


def test_replication_id_depends_on_direction_peers_and_filter():
    """Swapping source and target, another peer, or another filter each give another id."""
    base = replication_id("local:abc", "http://h:5984/csfr-1")
    assert base == replication_id("local:abc", "http://h:5984/csfr-1")
    assert len(base) == 32
    assert base != replication_id("http://h:5984/csfr-1", "local:abc")
    assert base != replication_id("local:xyz", "http://h:5984/csfr-1")
    assert base != replication_id("local:abc", "http://h:5984/csfr-1", doc_ids=["order:1"])
    assert replication_id("a", "b", doc_ids=["2", "1"]) == replication_id("a", "b", doc_ids=["1", "2"])


def test_matching_sessions_resume_from_the_source_seq():
    """Same latest session on both sides: resume at the source's recorded seq, verbatim."""
    assert compare_logs(log("s2", "7-g1AAA"), log("s2", "9-g1BBB")) == "7-g1AAA"


def test_shared_history_resumes_from_the_newest_common_session():
    """Different latest sessions: the newest session both histories hold decides."""
    source = log("s3", "30-x", ("s2", "20-x"), ("s1", "10-x"))
    target = log("s4", "40-x", ("s2", "20-y"), ("s1", "10-y"))
    assert compare_logs(source, target) == "20-x"


def test_no_common_history_or_missing_log_starts_over():
    """No shared session, a missing side (e.g. a recreated database): start from 0."""
    assert compare_logs(log("a", 5), log("b", 6)) == 0
    assert compare_logs(None, log("b", 6)) == 0
    assert compare_logs(log("a", 5), None) == 0
    assert compare_logs(None, {**log("b", 6), "source_checkpoint": False}) == 6
