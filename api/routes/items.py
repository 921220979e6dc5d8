"""Example resource: a protected CRUD API over a SQL model. Copy this file for your own."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.conditional import check_if_match, conditional, tagged
from api.validation import PageQuery, operation, page_response
from auth.auth import requires_auth
from database.sql.models import Item

items_bp = Blueprint("items", __name__, url_prefix="/api/items")

Name = Field(min_length=1, max_length=80)
Description = Field(default=None, max_length=500)


class ItemCreate(BaseModel):
    """Body of POST /api/items."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Name
    description: str | None = Description


class ItemUpdate(BaseModel):
    """Body of PATCH /api/items/<id>: the fields to change, at least one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=80)
    description: str | None = Description

    @model_validator(mode="after")
    def has_a_field(self) -> ItemUpdate:
        """An empty body changes nothing and is most likely a mistake."""
        if not self.model_fields_set:
            raise ValueError("Send at least one of the fields name or description.")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null; leave it out to keep the current name.")
        return self


class ItemOut(BaseModel):
    """An item as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Stored as naive UTC; sent with its zone so clients do not read local time."""
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ItemPage(BaseModel):
    """One page of items."""

    items: list[ItemOut]
    page: int
    per_page: int
    total: int


def to_json(item: Item) -> dict[str, object]:
    """Serialise a model instance through its output schema."""
    return ItemOut.model_validate(item).model_dump(mode="json")


@items_bp.get("")
@requires_auth()
@operation(responses={200: ItemPage, 304: None})
def list_items(query: PageQuery) -> Response:
    """One page of items, oldest first, with the total count (ETag: 304 when unchanged)."""
    items, total = Item.page(query.offset, query.per_page)
    return page_response(query, items, total, to_json)


@items_bp.get("/<int:item_id>")
@requires_auth()
@operation(responses={200: ItemOut, 304: None})
def get_item(item_id: int) -> Response:
    """One item, or 404 (ETag: 304 when unchanged)."""
    data = to_json(Item.get_or_raise(item_id))
    return conditional(jsonify(data), data)


@items_bp.post("")
@requires_auth()
@operation(responses={201: ItemOut}, errors=(409,))
def create_item(body: ItemCreate) -> tuple[Response, int, dict[str, str]]:
    """Create an item: 201 with its Location, 409 when the name is taken."""
    item = Item(**body.model_dump()).insert()
    location = url_for("items.get_item", item_id=item.id)
    return jsonify(to_json(item)), 201, {"Location": location}


@items_bp.patch("/<int:item_id>")
@requires_auth()
@operation(responses={200: ItemOut}, errors=(409, 412))
def update_item(item_id: int, body: ItemUpdate) -> Response:
    """Change the fields sent; 404 for an unknown id, 409 when the new name is taken, 412 when
    ``If-Match`` names an older version."""
    item = Item.get_or_raise(item_id, for_update=bool(request.if_match))
    if request.if_match:
        check_if_match(to_json(item))
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(item, field, value)
    changed = to_json(item.update())
    return tagged(jsonify(changed), changed)


@items_bp.delete("/<int:item_id>")
@requires_auth()
@operation(responses={204: None}, errors=(412,))
def delete_item(item_id: int) -> tuple[str, int]:
    """Delete an item: 204, 404 for an unknown id, 412 when ``If-Match`` names an older version."""
    item = Item.get_or_raise(item_id, for_update=bool(request.if_match))
    if request.if_match:
        check_if_match(to_json(item))
    item.delete()
    return "", 204
