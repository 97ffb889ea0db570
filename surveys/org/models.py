"""People and teams: who is in the sales org, their roles, and the staff's
API tokens and sign-in sessions. Imports, exports and the API keep these
tables in step with the company's own directory."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cadence.clock import utcnow
from surveys.extensions import UTCDateTime, db

ROLES = ("rep", "pm", "leader", "admin")
STAFF_ROLES = ("pm", "leader", "admin")
TEAM_PATH_SEPARATOR = " / "


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    # The full path from the top of the org ("Sales / EMEA / Enterprise"):
    # lets SQL select a team with all its sub-teams by prefix.
    path: Mapped[str] = mapped_column(String(1000), unique=True)

    parent: Mapped[Team | None] = relationship(remote_side=[id])

    def __repr__(self):
        return f"<Team {self.path}>"


class Person(UserMixin, db.Model):
    """Anyone Canary knows: reps (no password) and staff (sign in)."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased: emails are unique case-insensitively.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    region: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Bumped to sign a person out everywhere: sessions carry the version
    # they were created with.
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    team: Mapped[Team | None] = relationship()
    manager: Mapped[Person | None] = relationship(remote_side=[id])
    role_rows: Mapped[list[PersonRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="PersonRole.role"
    )

    @property
    def roles(self) -> set[str]:
        return {row.role for row in self.role_rows}

    def set_roles(self, roles):
        wanted = set(roles)
        self.role_rows = [row for row in self.role_rows if row.role in wanted]
        for role in sorted(wanted - self.roles):
            self.role_rows.append(PersonRole(role=role))

    def has_role(self, *roles) -> bool:
        return bool(self.roles & set(roles))

    @property
    def is_staff(self) -> bool:
        return self.has_role(*STAFF_ROLES)

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive people cannot sign in
        return self.active

    def __repr__(self):
        return f"<Person {self.email}>"


class PersonRole(db.Model):
    __tablename__ = "person_roles"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="known_role"),)

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class ApiToken(db.Model):
    """A Bearer token for /api/v1. Only its SHA-256 is stored, with the name
    its owner gave it and the token's first characters (its visible prefix,
    so a list can be matched against the token a program holds)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="API token", server_default="API token")
    # None for tokens made before prefixes were kept.
    prefix: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()


class StaffSession(db.Model):
    """One signed-in browser (issue 13): the cookie carries a random id whose
    SHA-256 is kept here, so signing out ends the session on the server and a
    copied cookie stops working. Ended sessions never come back."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
