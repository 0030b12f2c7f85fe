"""The Solomon adapter: parse the classic format and solve a tiny instance to a feasible plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing import SolveParams, solve
from routing.solomon import parse_solomon, to_problem

TINY = """TINY

VEHICLE
NUMBER     CAPACITY
  3         20

CUSTOMER
CUST NO.   XCOORD.   YCOORD.    DEMAND   READY TIME   DUE DATE   SERVICE TIME

    0          40      50          0          0       240          0
    1          45      68         10          0       200         10
    2          45      70          5         50       150         10
    3          42      66         10          0       100         10
    4          60      50         10        100       200         10
    5          30      40          5          0       230         10
"""


def test_parse_and_solve_tiny_instance(tmp_path: Path) -> None:
    """A six-node instance parses (fleet, capacity, rows) and solves with every customer on a feasible route."""
    path = tmp_path / "TINY.txt"
    path.write_text(TINY.replace("\n", "\r\n"))
    inst = parse_solomon(path)
    assert (inst.vehicles, inst.capacity, len(inst.rows)) == (3, 20, 6)
    p = to_problem(inst)
    plan = solve(p, SolveParams(time_limit_s=1.0, solution_limit=50))
    assert not plan.unassigned
    for r in plan.routes:
        assert sum(next(s.demand for s in p.stops if s.id == v.stop_id) for v in r.visits) <= 20
        for v in r.visits:
            w = next(s.windows[0] for s in p.stops if s.id == v.stop_id)
            assert w.start_s <= v.start_s <= w.end_s


def test_parse_rejects_malformed_row(tmp_path: Path) -> None:
    """A customer row with the wrong number of fields names its line."""
    path = tmp_path / "BAD.txt"
    path.write_text(
        TINY.replace("    5          30      40          5          0       230         10", "    5 30 40")
    )
    with pytest.raises(ValueError, match=r"BAD.txt:\d+: expected 7 numbers"):
        parse_solomon(path)
