"""Accounts: ``User``, ``Role`` and their link, ``RefreshFamily`` (one per login), ``ApiKey``.

Only data and its queries live here; the rules (password policy, rotation, revocation,
scopes) are in ``auth/`` services, shared by the API, the CLI and the admin pages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    Update,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, mapped_column, relationship

from database.sql.errors import translated_errors
from database.sql.extension import db
from database.sql.models import Identifier, ModelBase
from database.sql.types import UTCDateTime, aware_utc_now

__all__ = ["ApiKey", "RefreshFamily", "Role", "User", "split_scopes", "user_roles"]

USERNAME_LENGTH = 150
EMAIL_LENGTH = 254
HASH_LENGTH = 64  # hex of a SHA-256 digest or HMAC

user_roles = Table(
    "user_roles",
    db.metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


def split_scopes(text: str | None) -> frozenset[str]:
    """Scopes are stored as one space-separated string (as OAuth writes them)."""
    return frozenset((text or "").split())


def join_scopes(scopes: frozenset[str] | set[str] | list[str] | tuple[str, ...]) -> str:
    """The stored form of a set of scopes: sorted, space-separated."""
    return " ".join(sorted(set(scopes)))


class Role(ModelBase, db.Model):  # type: ignore[name-defined]
    """A named role (``admin``...) and the scopes it grants its users."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    description: Mapped[str | None] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(Text, nullable=False, default="")

    @property
    def scope_set(self) -> frozenset[str]:
        """The scopes this role grants."""
        return split_scopes(self.scopes)


class User(Identifier, ModelBase, db.Model):  # type: ignore[name-defined]
    """An account: a unique username, an optional unique email, an argon2id password hash."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True, nullable=False)
    email: Mapped[str | None] = mapped_column(String(EMAIL_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime())
    roles: Mapped[list[Role]] = relationship(
        Role, secondary=user_roles, lazy="selectin", order_by=Role.name
    )

    @property
    def role_names(self) -> frozenset[str]:
        """The names of the user's roles."""
        return frozenset(role.name for role in self.roles)

    @property
    def scope_set(self) -> frozenset[str]:
        """Every scope the user's roles grant."""
        scopes: set[str] = set()
        for role in self.roles:
            scopes |= role.scope_set
        return frozenset(scopes)


class RefreshFamily(ModelBase, db.Model):  # type: ignore[name-defined]
    """One login: the chain of refresh tokens rotated from it, and whether it still lives.

    Only a hash of the current refresh token is stored. ``generation`` counts rotations; a
    rotation is a compare-and-swap on it (``rotate``), so two concurrent refreshes of one
    token cannot both win. ``previous_hash`` and ``rotated_at`` allow the short grace window
    for a client that lost the answer to its own refresh.
    """

    __tablename__ = "refresh_families"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), nullable=False)
    previous_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=aware_utc_now
    )
    last_used_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=aware_utc_now
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    remote_ip: Mapped[str | None] = mapped_column(String(45))

    @classmethod
    def rotate(
        cls,
        family_id: str,
        generation: int,
        token_hash: str,
        new_hash: str,
        expires_at: datetime,
    ) -> bool:
        """Swap the family's token for ``new_hash`` if it is still at ``generation`` with
        ``token_hash`` and not revoked; True when this call won (one UPDATE, committed)."""
        now = aware_utc_now()
        statement = (
            update(cls)
            .where(
                cls.id == family_id,
                cls.generation == generation,
                cls.token_hash == token_hash,
                cls.revoked_at.is_(None),
            )
            .values(
                generation=generation + 1,
                previous_hash=token_hash,
                token_hash=new_hash,
                rotated_at=now,
                last_used_at=now,
                expires_at=expires_at,
            )
            .execution_options(synchronize_session=False)
        )
        return _execute_committed(statement) == 1


def _execute_committed(statement: Update) -> int:
    """Run one UPDATE in its own commit; return how many rows it changed."""
    with translated_errors():
        try:
            result: CursorResult[Any] = db.session.execute(statement)  # type: ignore[assignment]
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return int(result.rowcount)


class ApiKey(ModelBase, db.Model):  # type: ignore[name-defined]
    """An API key ``<prefix>_<id>_<secret>``: only an HMAC of the secret is stored.

    It belongs to a user (its scopes are then capped by the user's current ones) or to a
    named service; it always expires.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "(owner_user_id IS NULL AND owner_service IS NOT NULL) OR "
            "(owner_user_id IS NOT NULL AND owner_service IS NULL)",
            name="one_owner",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    owner_user_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    owner_service: Mapped[str | None] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    secret_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=aware_utc_now
    )
    created_by: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    owner: Mapped[User | None] = relationship(User, lazy="joined")

    @property
    def scope_set(self) -> frozenset[str]:
        """The scopes the key was created with (before the owner's cap)."""
        return split_scopes(self.scopes)

    @classmethod
    def lookup(cls, key_id: str) -> ApiKey | None:
        """The key with this id, with its owner, or None."""
        with translated_errors():
            return db.session.get(cls, key_id)

    @classmethod
    def listed(cls, owner_user_id: str | None, include_revoked: bool) -> list[ApiKey]:
        """Keys, newest first: one owner's (when given), revoked ones only when asked."""
        query = select(cls).order_by(cls.created_at.desc(), cls.id)
        if owner_user_id is not None:
            query = query.where(cls.owner_user_id == owner_user_id)
        if not include_revoked:
            query = query.where(cls.revoked_at.is_(None))
        with translated_errors():
            return list(db.session.scalars(query))

    @classmethod
    def ids_of_owner(cls, user_id: str) -> list[str]:
        """The ids of every key of a user."""
        with translated_errors():
            return list(db.session.scalars(select(cls.id).where(cls.owner_user_id == user_id)))

    @classmethod
    def touch(cls, key_id: str, now: datetime, interval: timedelta) -> None:
        """Set ``last_used_at`` unless it was set less than ``interval`` ago (one UPDATE)."""
        statement = (
            update(cls)
            .where(
                cls.id == key_id,
                or_(cls.last_used_at.is_(None), cls.last_used_at < now - interval),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        _execute_committed(statement)
