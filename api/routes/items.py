"""Example resource: a protected CRUD API over a SQL model. Copy this file for your own."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.validation import PageQuery, page_response, parse_body, parse_query
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


def to_json(item: Item) -> dict[str, object]:
    """Serialise a model instance through its output schema."""
    return ItemOut.model_validate(item).model_dump(mode="json")


@items_bp.get("")
@requires_auth()
def list_items() -> Response:
    """One page of items, oldest first, with the total count."""
    query = parse_query(PageQuery)
    items, total = Item.page(query.offset, query.per_page)
    return page_response(query, items, total, to_json)


@items_bp.get("/<int:item_id>")
@requires_auth()
def get_item(item_id: int) -> Response:
    """One item, or 404."""
    return jsonify(to_json(Item.get_or_raise(item_id)))


@items_bp.post("")
@requires_auth()
def create_item() -> tuple[Response, int, dict[str, str]]:
    """Create an item: 201 with its Location, 409 when the name is taken."""
    data = parse_body(ItemCreate)
    item = Item(**data.model_dump()).insert()
    location = url_for("items.get_item", item_id=item.id)
    return jsonify(to_json(item)), 201, {"Location": location}


@items_bp.patch("/<int:item_id>")
@requires_auth()
def update_item(item_id: int) -> Response:
    """Change the fields sent; 404 for an unknown id, 409 when the new name is taken."""
    data = parse_body(ItemUpdate)
    item = Item.get_or_raise(item_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(item, field, value)
    return jsonify(to_json(item.update()))


@items_bp.delete("/<int:item_id>")
@requires_auth()
def delete_item(item_id: int) -> tuple[str, int]:
    """Delete an item: 204, or 404 for an unknown id."""
    Item.get_or_raise(item_id).delete()
    return "", 204
