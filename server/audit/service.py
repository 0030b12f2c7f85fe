"""Append audit events."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.audit.models import AuditEvent


def record(
    *,
    db_session: Session,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object,
    detail: dict[str, Any],
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it describes)."""
    event = AuditEvent(
        actor=actor, action=action, entity_type=entity_type, entity_id=str(entity_id), detail=detail
    )
    db_session.add(event)
    return event
