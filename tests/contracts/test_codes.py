"""The shared order lifecycle table."""

import pytest

from contracts.codes import (
    CLOSED_STATUSES,
    DEFAULT_PRIORITY,
    DEFAULT_SERVICE_MIN,
    DEFAULT_SKILLS,
    OPEN_STATUSES,
    ORDER_TRANSITIONS,
    OrderStatus,
    OrderType,
    transition_error,
)


def test_every_status_has_a_row_and_open_closed_partition():
    """Each status appears in the table, and open/closed split the statuses exactly."""
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    assert set(OrderStatus) == OPEN_STATUSES | CLOSED_STATUSES
    assert not OPEN_STATUSES & CLOSED_STATUSES


@pytest.mark.parametrize("status", sorted(OPEN_STATUSES))
def test_any_open_order_can_be_cancelled(status):
    """Cancel is legal from every open state (architecture: 'cancelled from any open state')."""
    assert transition_error(status, OrderStatus.CANCELLED) is None


@pytest.mark.parametrize(
    ("current", "target", "fragment"),
    [
        (OrderStatus.COMPLETED, OrderStatus.NEW, "closed order"),
        (OrderStatus.CANCELLED, OrderStatus.DISPATCHED, "closed order"),
        (OrderStatus.NEW, OrderStatus.COMPLETED, "may go to"),
        (OrderStatus.ON_SITE, OrderStatus.EN_ROUTE, "may go to"),
    ],
)
def test_illegal_transitions_explain_themselves(current, target, fragment):
    """An illegal move returns a sentence naming both states."""
    reason = transition_error(current, target)
    assert reason is not None
    assert fragment in reason and current.value in reason and target.value in reason


def test_every_order_type_has_defaults():
    """Priority, skills and service minutes are defined for every order type."""
    for order_type in OrderType:
        assert order_type in DEFAULT_PRIORITY
        assert order_type in DEFAULT_SKILLS
        assert DEFAULT_SERVICE_MIN[order_type] > 0
