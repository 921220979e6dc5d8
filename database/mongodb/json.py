"""JSON for documents: ObjectId as its hex string, datetimes as ISO 8601."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bson import ObjectId
from flask.json.provider import DefaultJSONProvider


class MongoJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider that also writes ObjectId and ISO dates."""

    @staticmethod
    def default(o: Any) -> Any:
        """Serialise what the standard encoder cannot."""
        if isinstance(o, ObjectId):
            return str(o)
        if isinstance(o, datetime | date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)
