"""Example resource: a protected CRUD API over a MongoDB collection. Copy it for your own.

Each caller sees only the notes of its own session (``owner``). User input never reaches a
query unchecked: bodies and filters are validated, and keys starting with ``$`` or holding a
``.`` are refused, so no operator can be injected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from werkzeug.exceptions import PreconditionFailed

from api.conditional import STALE, check_if_match, conditional, tagged
from api.validation import PageQuery, operation, page_response
from auth.auth import require_principal, requires_auth
from database.errors import ConfigurationError, NotFoundError

notes_bp = Blueprint("notes", __name__, url_prefix="/api/notes")

COLLECTION = "notes"
NOT_CONFIGURED = (
    "MongoDB is not configured; set MONGO_URI (e.g. mongodb://127.0.0.1:27017/app), "
    "or run `make mongo-dev` and use the MONGO_URI it prints."
)
FILTER_FIELDS = ("title", "tags")
Scalar = str | int | float | bool | None
Title = Annotated[str, Field(min_length=1, max_length=200)]
Body = Annotated[str, Field(max_length=10_000)]
Tags = Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]], Field(max_length=20)]
Attributes = Annotated[dict[str, Scalar], Field(max_length=50)]


def check_keys(attributes: dict[str, Scalar]) -> dict[str, Scalar]:
    """Keys are stored as field names: no ``$`` prefix (operators) and no ``.`` (paths)."""
    for key in attributes:
        if not key or key.startswith("$") or "." in key:
            raise ValueError(
                f"attribute names cannot be empty, start with '$' or hold '.': {key!r}"
            )
    return attributes


class NoteCreate(BaseModel):
    """Body of POST /api/notes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title
    body: Body = ""
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _keys(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        return check_keys(value)


class NoteUpdate(BaseModel):
    """Body of PATCH /api/notes/<id>: the fields to change, at least one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None
    attributes: Attributes | None = None

    @field_validator("attributes")
    @classmethod
    def _keys(cls, value: dict[str, Scalar] | None) -> dict[str, Scalar] | None:
        return None if value is None else check_keys(value)

    @model_validator(mode="after")
    def has_a_field(self) -> NoteUpdate:
        """An empty body, or a null field, is most likely a mistake."""
        if not self.model_fields_set:
            raise ValueError("Send at least one of the fields title, body, tags or attributes.")
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave a field out to keep it.")
        return self


class NoteQuery(PageQuery):
    """``?page=&per_page=&filter={"title": ..., "tags": ...}`` for the list."""

    filter: str | None = Field(default=None, max_length=1000)

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        if value is not None:
            user_filter(value)
        return value


def user_filter(text: str) -> dict[str, Scalar]:
    """Parse ``filter``: a JSON object of exact matches on FILTER_FIELDS, plain values only."""
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ValueError('filter must be a JSON object, e.g. {"tags": "work"}') from None
    if not isinstance(parsed, dict):
        raise ValueError('filter must be a JSON object, e.g. {"tags": "work"}')
    for key, value in parsed.items():
        if key not in FILTER_FIELDS:
            raise ValueError(f"filter can match only {', '.join(FILTER_FIELDS)}; not {key!r}")
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise ValueError(f"filter values must be plain values; operators are refused ({key})")
    return parsed


class NoteOut(BaseModel):
    """A note as the API returns it."""

    id: str
    title: str
    body: str
    tags: list[str]
    attributes: dict[str, Scalar]
    created_at: datetime
    updated_at: datetime


class NotePage(BaseModel):
    """One page of notes."""

    items: list[NoteOut]
    page: int
    per_page: int
    total: int


def mongo() -> Any:
    """The app's Mongo helper, or 503 with how to configure it."""
    helper = current_app.extensions.get("mongodb")
    if helper is None:
        raise ConfigurationError(NOT_CONFIGURED)
    return helper


def owner() -> str:
    """Notes belong to the caller (a session's uid, a user's id, an API key's owner...)."""
    return require_principal().subject


def to_json(document: dict[str, Any]) -> dict[str, Any]:
    """Serialise a stored document through the output schema."""
    return NoteOut(id=str(document["_id"]), **document).model_dump(mode="json")


def find_own(note_id: str) -> dict[str, Any]:
    """The caller's note with this id, or 404 (also for malformed ids and others' notes)."""
    document = mongo().findone(COLLECTION, {"_id": _object_id(note_id), "owner": owner()})
    if document is None:
        raise NotFoundError(f"No note has id {note_id!r}.")
    return document


def write_target(note_id: str) -> dict[str, Any]:
    """The filter a write goes through: the caller's note (404 if none), and with ``If-Match``
    the version the client read, so a change made in between is never overwritten (412)."""
    current = find_own(note_id)
    target = {"_id": current["_id"], "owner": current["owner"]}
    if request.if_match:
        check_if_match(to_json(current))
        target["updated_at"] = current["updated_at"]
    return target


def _object_id(note_id: str) -> object:
    """Only ids we issue (24 hex digits) can match; anything else is simply not found."""
    from database.mongodb.helper import document_id

    key = document_id(note_id)
    if isinstance(key, str):
        raise NotFoundError(f"No note has id {note_id!r}.")
    return key


def now() -> datetime:
    """The time as MongoDB stores it (UTC, whole milliseconds), so answers match reads."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def ensure_indexes() -> None:
    """Titles are unique per owner; created on first use, not at start-up."""
    state = current_app.extensions.setdefault("notes_indexes", {"done": False})
    if not state["done"]:
        mongo().gettable(COLLECTION).create_index(
            [("owner", 1), ("title", 1)], unique=True, name="owner_title_unique"
        )
        state["done"] = True


@notes_bp.get("")
@requires_auth()
@operation(responses={200: NotePage, 304: None})
def list_notes(query: NoteQuery) -> Response:
    """The caller's notes, newest first, a page at a time."""
    match: dict[str, Any] = {"owner": owner()}
    if query.filter:
        match.update(user_filter(query.filter))
    helper = mongo()
    documents = helper.find(
        COLLECTION, match, sort=[("_id", -1)], skip=query.offset, limit=query.per_page
    )
    return page_response(query, documents, helper.count(COLLECTION, match), to_json)


@notes_bp.get("/<note_id>")
@requires_auth()
@operation(responses={200: NoteOut, 304: None})
def get_note(note_id: str) -> Response:
    """One note (ETag: 304 when unchanged)."""
    data = to_json(find_own(note_id))
    return conditional(jsonify(data), data)


@notes_bp.post("")
@requires_auth()
@operation(responses={201: NoteOut}, errors=(409,))
def create_note(body: NoteCreate) -> tuple[Response, int, dict[str, str]]:
    """Create a note; 409 when the caller already has one with this title."""

    ensure_indexes()
    created = now()
    document = {**body.model_dump(), "owner": owner(), "created_at": created, "updated_at": created}
    document["_id"] = mongo().insert_row(COLLECTION, document)
    location = url_for("notes.get_note", note_id=str(document["_id"]))
    return jsonify(to_json(document)), 201, {"Location": location}


@notes_bp.patch("/<note_id>")
@requires_auth()
@operation(responses={200: NoteOut}, errors=(409, 412))
def update_note(note_id: str, body: NoteUpdate) -> Response:
    """Change some fields of a note; 412 when ``If-Match`` names an older version."""
    target = write_target(note_id)
    changes = body.model_dump(exclude_unset=True)
    ensure_indexes()
    if not mongo().updateone(COLLECTION, target, {**changes, "updated_at": now()}).matched:
        raise PreconditionFailed(STALE)
    changed = to_json(find_own(note_id))
    return tagged(jsonify(changed), changed)


@notes_bp.delete("/<note_id>")
@requires_auth()
@operation(responses={204: None}, errors=(412,))
def delete_note(note_id: str) -> tuple[str, int]:
    """Delete a note; 412 when ``If-Match`` names an older version."""
    if not mongo().deleteone(COLLECTION, write_target(note_id)):
        raise PreconditionFailed(STALE)
    return "", 204
