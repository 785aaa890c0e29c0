"""Staff data access: the demo team and lookups."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from models.auth import hash_password
from models.tables import Role, Staff

# Demo accounts only: every demo person signs in with their e-mail and this password (README, "Screens").
DEMO_PASSWORD = "escucha-demo"  # noqa: S105 - published demo credentials, hashed on insert

# A bilingual team that covers both channels, with seniors for crisis and very negative posts.
DEMO_TEAM: tuple[dict[str, object], ...] = (
    {
        "name": "Lucía Romero",
        "email": "lucia@demo.escucha",
        "role": Role.MANAGER,
        "languages": "es,en",
        "channels": "public,dm",
        "senior": True,
        "capacity": 60,
    },
    {
        "name": "Marta Gil",
        "email": "marta@demo.escucha",
        "role": Role.AGENT,
        "languages": "es,en",
        "channels": "public,dm",
        "senior": True,
        "capacity": 60,
    },
    {
        "name": "Diego Fernández",
        "email": "diego@demo.escucha",
        "role": Role.AGENT,
        "languages": "es",
        "channels": "public",
        "senior": False,
        "capacity": 50,
    },
    {
        "name": "Camila Torres",
        "email": "camila@demo.escucha",
        "role": Role.AGENT,
        "languages": "es,en",
        "channels": "dm,public",
        "senior": False,
        "capacity": 50,
    },
    {
        "name": "Sam Carter",
        "email": "sam@demo.escucha",
        "role": Role.AGENT,
        "languages": "en",
        "channels": "public",
        "senior": False,
        "capacity": 50,
    },
    {
        "name": "Priya Shah",
        "email": "priya@demo.escucha",
        "role": Role.AGENT,
        "languages": "en",
        "channels": "dm,public",
        "senior": False,
        "capacity": 50,
    },
    {
        "name": "Alex Kim",
        "email": "alex@demo.escucha",
        "role": Role.ADMIN,
        "languages": "en,es",
        "channels": "public,dm",
        "senior": True,
        "capacity": 20,
    },
    {
        "name": "Noa Levi",
        "email": "noa@demo.escucha",
        "role": Role.MARKETING,
        "languages": "en,es",
        "channels": "",
        "senior": False,
        "capacity": 0,
    },
)


def ensure_demo_team(session: Session) -> int:
    """Add the demo team when there is no staff yet; return how many were added."""
    if session.execute(select(func.count()).select_from(Staff)).scalar_one():
        return 0
    # Each member gets their own salted argon2 hash; the password itself is never stored.
    session.add_all(
        [
            Staff(
                **member,  # type: ignore[arg-type]
                password_hash=hash_password(DEMO_PASSWORD),
                # Each person's interface starts in their first language.
                ui_language=str(member["languages"]).split(",")[0],
            )
            for member in DEMO_TEAM
        ]
    )
    session.commit()
    return len(DEMO_TEAM)


def list_staff(session: Session) -> list[Staff]:
    """Return every staff member, by name."""
    return list(session.exec(select(Staff).order_by(Staff.name)).scalars())  # type: ignore[call-overload]
