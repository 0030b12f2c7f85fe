"""The limits handed to a tablet or hand-held against the one classifier, as a property over many facts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.orders.policy import current_policy
from server.orders.rules.reads import classify, interval_use, reading_limits

POLICY = current_policy().reads


def _needs_reread(
    previous: float, reading: float, *, norm, history_count, active_occupied, dials, decimals
) -> bool:
    use, rolled = interval_use(
        previous, reading, dials=dials, decimals=decimals, max_fraction=POLICY.rollover_max_fraction
    )
    return classify(
        use=use,
        rolled=rolled,
        read_code="",
        norm=norm,
        history_count=history_count,
        active_occupied=active_occupied,
        estimates_in_a_row=0,
        policy=POLICY,
    ).reread


@settings(max_examples=400, deadline=None)
@given(
    decimals=st.integers(0, 3),
    whole_dials=st.integers(3, 8),
    previous_fraction=st.floats(0, 0.999),
    norm=st.one_of(st.none(), st.floats(0, 50_000)),
    history_count=st.integers(0, 40),
    active_occupied=st.booleans(),
    where=st.floats(0, 1),
)
def test_inside_the_limits_never_a_reread_and_one_step_outside_always(
    decimals, whole_dials, previous_fraction, norm, history_count, active_occupied, where
):
    """For any register, previous reading, norm, history and account: the limits' ends and any reading
    between them pass the classifier; one register step below the low end or above the high end does not."""
    dials = whole_dials + decimals
    top = 10**whole_dials
    previous = round(previous_fraction * top, decimals)
    facts = dict(
        norm=norm,
        history_count=history_count,
        active_occupied=active_occupied,
        dials=dials,
        decimals=decimals,
    )
    low, high = reading_limits(previous=previous, policy=POLICY, **facts)
    step = 10.0**-decimals
    if low is None and high is None:
        return  # the range would cross the rollover: nothing given, nothing promised
    assert low is not None and low >= previous
    assert not _needs_reread(previous, low, **facts)
    assert _needs_reread(previous, round(low - step, decimals), **facts)
    if high is None:
        return
    assert low <= high < top
    inside = round(low + where * (high - low), decimals)
    assert not _needs_reread(previous, inside, **facts)
    assert not _needs_reread(previous, high, **facts)
    assert _needs_reread(previous, round(high + step, decimals), **facts)
