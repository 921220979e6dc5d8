"""Accounts: ``User``, ``Role`` and their link, ``RefreshFamily`` (one per login), ``ApiKey``.

Only data and its queries live here; the rules (password policy, rotation, revocation,
scopes) are in ``auth/`` services, shared by the API, the CLI and the admin pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    Update,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, mapped_column, relationship

from database.sql.errors import translated_errors
from database.sql.extension import db
from database.sql.models import Identifier, ModelBase
from database.sql.paging import counted_page
from database.sql.types import UTCDateTime, aware_utc_now

__all__ = ["ApiKey", "RefreshFamily", "Role", "User", "split_scopes", "user_roles"]

USERNAME_LENGTH = 150
EMAIL_LENGTH = 254
HASH_LENGTH = 64  # hex of a SHA-256 digest or HMAC
# Not a backslash: MySQL treats it as a string escape too, which would double the escaping.
LIKE_ESCAPE = "!"

user_roles = Table(
    "user_roles",
    db.metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


def split_scopes(text: str | None) -> frozenset[str]:
    """Scopes are stored as one space-separated string (as OAuth writes them)."""
    return frozenset((text or "").split())


def _contains_pattern(text: str) -> str:
    """A LIKE pattern matching values that contain ``text`` literally (% and _ escaped)."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return f"%{text}%"


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

    @classmethod
    def by_name(cls, name: str) -> Role | None:
        """The role called ``name``, or None."""
        with translated_errors():
            return db.session.scalar(select(cls).where(cls.name == name))

    @classmethod
    def by_names(cls, names: Iterable[str]) -> list[Role]:
        """The roles with these names (unknown names are left out)."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        with translated_errors():
            return list(db.session.scalars(select(cls).where(cls.name.in_(wanted))))

    @classmethod
    def all_by_name(cls) -> Sequence[Role]:
        """Every role, by name."""
        with translated_errors():
            return db.session.scalars(select(cls).order_by(cls.name)).all()


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

    @classmethod
    def by_username(cls, username: str) -> User | None:
        """The user called ``username`` (stored in lower case), or None."""
        with translated_errors():
            return db.session.scalar(select(cls).where(cls.username == username))

    @classmethod
    def search(cls, text: str | None, offset: int, limit: int) -> tuple[Sequence[Self], int]:
        """Users whose username or email contains ``text`` (any case), by username, and the
        total count of matches."""
        query = select(cls)
        if text:
            pattern = _contains_pattern(text.lower())
            query = query.where(
                or_(
                    cls.username.like(pattern, escape=LIKE_ESCAPE),
                    func.lower(cls.email).like(pattern, escape=LIKE_ESCAPE),
                )
            )
        with translated_errors():
            rows, total = counted_page(db.session, query, [cls.username], offset, limit)
            return rows.scalars().all(), total

    @classmethod
    def locked_active_with_role(cls, role_name: str) -> frozenset[str]:
        """The ids of the active users who have the role, read under locks held until the
        transaction ends (PostgreSQL, MariaDB/MySQL, SQL Server; SQLite has no row locks).

        The role's row is locked first, so concurrent callers take turns: the second waits
        until the first commits, then sees its outcome. The ids are read with a locking
        read, which sees that outcome even under MariaDB's repeatable-read snapshot.
        """
        with translated_errors():
            db.session.execute(select(Role.id).where(Role.name == role_name).with_for_update())
            query = (
                select(cls.id)
                .join(cls.roles)
                .where(Role.name == role_name, cls.is_active.is_(True))
                .with_for_update(read=True)
            )
            return frozenset(db.session.scalars(query))

    @classmethod
    def names_by_ids(cls, ids: Iterable[str]) -> dict[str, str]:
        """The usernames of the users with these ids (unknown ids are left out)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with translated_errors():
            rows = db.session.execute(select(cls.id, cls.username).where(cls.id.in_(wanted)))
            return {row.id: row.username for row in rows}


@contextmanager
def _committed() -> Iterator[None]:
    """Commit what the block did, or roll it back if it raised (errors translated)."""
    with translated_errors():
        try:
            yield
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise


def _execute_committed(statement: Update) -> int:
    """Run one UPDATE in its own commit; return how many rows it changed."""
    with _committed():
        result: CursorResult[Any] = db.session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


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

    @classmethod
    def load(cls, family_id: str) -> RefreshFamily | None:
        """The family as the database has it now (not a copy held by this session)."""
        with translated_errors():
            return db.session.get(cls, family_id, populate_existing=True)

    @classmethod
    def of_user(cls, user_id: str, limit: int) -> Sequence[RefreshFamily]:
        """The user's latest ``limit`` families, newest first."""
        query = (
            select(cls)
            .where(cls.user_id == user_id)
            .order_by(cls.created_at.desc(), cls.id)
            .limit(limit)
        )
        with translated_errors():
            return db.session.scalars(query).all()

    @classmethod
    def is_alive(cls, family_id: str) -> bool:
        """True when the family exists and is not revoked (one indexed primary-key read)."""
        with translated_errors():
            found = db.session.execute(select(cls.revoked_at).where(cls.id == family_id)).first()
            # Give the connection back at once: this runs on every uncached access check.
            db.session.commit()
        return found is not None and found.revoked_at is None

    @classmethod
    def revoke(
        cls,
        reason: str,
        family_id: str | None = None,
        user_id: str | None = None,
        keep: str | None = None,
    ) -> list[str]:
        """Revoke one family, or every live family of a user except ``keep``; committed.

        Returns the ids that this call revoked (families already revoked are left as they are).
        """
        conditions: list[ColumnElement[bool]] = [cls.revoked_at.is_(None)]
        if family_id is not None:
            conditions.append(cls.id == family_id)
        if user_id is not None:
            conditions.append(cls.user_id == user_id)
        if keep is not None:
            conditions.append(cls.id != keep)
        if family_id is None and user_id is None:
            raise ValueError("RefreshFamily.revoke needs a family_id or a user_id.")
        with _committed():
            ids = list(db.session.scalars(select(cls.id).where(*conditions)))
            if ids:
                db.session.execute(
                    update(cls)
                    .where(cls.id.in_(ids), cls.revoked_at.is_(None))
                    .values(revoked_at=aware_utc_now(), revoked_reason=reason[:40])
                    .execution_options(synchronize_session=False)
                )
        return ids

    @classmethod
    def delete_for_user(cls, user_id: str) -> None:
        """Delete the user's families in the current transaction (committed by the caller).

        Not left to ON DELETE CASCADE, which SQLite applies only with a connection pragma.
        """
        with translated_errors():
            db.session.execute(
                delete(cls)
                .where(cls.user_id == user_id)
                .execution_options(synchronize_session=False)
            )

    @classmethod
    def purge_batch(cls, before: datetime, batch_size: int) -> int:
        """Delete up to ``batch_size`` families revoked or expired before ``before``; committed."""
        finished = or_(
            cls.revoked_at < before, cls.expires_at < before, cls.absolute_expires_at < before
        )
        deleted = 0
        with _committed():
            ids = list(db.session.scalars(select(cls.id).where(finished).limit(batch_size)))
            if ids:
                result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
                    delete(cls).where(cls.id.in_(ids)).execution_options(synchronize_session=False)
                )
                deleted = result.rowcount
        return deleted


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
    def delete_for_owner(cls, user_id: str) -> list[str]:
        """Delete a user's keys in the current transaction; return their ids."""
        with translated_errors():
            ids = cls.ids_of_owner(user_id)
            if ids:
                db.session.execute(delete(cls).where(cls.id.in_(ids)))
        return ids

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
