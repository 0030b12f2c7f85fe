"""Demo people: a user per role, the CSFR crew with their sign-ins, and a docking-station token."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.auth.models import ApiToken, User
from server.auth.service import create_api_token, create_user
from server.demo.district import CREW, YARD_LAT, YARD_LON
from server.technicians.models import Technician

DEMO_PASSWORD = "curbstop-demo"
OFFICE_USERS = [
    ("admin", Role.ADMIN, "Alex Admin", 0),
    ("dispatcher", Role.DISPATCHER, "Dana Dispatch", 0),
    ("advisor", Role.ADVISOR, "Avery Advisor", 50_000),
    ("supervisor", Role.SUPERVISOR, "Sky Supervisor", 500_000),
]


@dataclass
class SeedResult:
    """Who can sign in, and the station token (only when newly made)."""

    usernames: list[tuple[str, str]]
    station_token: str | None


def seed_people(*, db_session: Session) -> SeedResult:
    """Create the demo users and crew if they are not there yet (safe to run again)."""
    users: list[tuple[str, str]] = []
    for username, role, full_name, limit in OFFICE_USERS:
        if db_session.scalar(select(User.id).where(User.username == username)) is None:
            create_user(
                db_session=db_session,
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                full_name=full_name,
                authority_limit_cents=limit,
            )
        users.append((username, role.value))
    for member in CREW:
        username = member.code.lower()
        user = db_session.scalar(select(User).where(User.username == username))
        if user is None:
            user = create_user(
                db_session=db_session,
                username=username,
                password=DEMO_PASSWORD,
                role=Role.CSFR,
                full_name=member.name,
            )
        tech = db_session.scalar(select(Technician).where(Technician.code == member.code))
        if tech is None:
            db_session.add(
                Technician(
                    code=member.code,
                    name=member.name,
                    user_id=user.id,
                    skills=list(member.skills),
                    depot_lat=YARD_LAT,
                    depot_lon=YARD_LON,
                    shift_start=member.shift_start,
                    shift_end=member.shift_end,
                    service_area="",
                )
            )
        users.append((username, f"csfr ({member.name})"))
    token = None
    if db_session.scalar(select(ApiToken.id).where(ApiToken.name == "demo-dock")) is None:
        token = create_api_token(db_session=db_session, name="demo-dock", role=Role.STATION)
    db_session.commit()
    return SeedResult(usernames=users, station_token=token)
