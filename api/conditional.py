"""Conditional requests: ``ETag`` on reads (304 for ``If-None-Match``), ``If-Match`` on writes.

The ETag is a hash of the resource's JSON representation, so it changes exactly when what a
client would read changes, whatever the storage. A write sent with ``If-Match`` that no
longer matches is refused with 412, so one client cannot overwrite a change it has not seen.
"""

from __future__ import annotations

import hashlib
import json

from flask import Response, request
from werkzeug.exceptions import PreconditionFailed

STALE = (
    "The resource changed since you read it: If-Match does not match its current ETag; "
    "GET it again and retry the change."
)


def representation_etag(data: object) -> str:
    """A strong validator for a JSON-serialisable representation."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def conditional(response: Response, data: object) -> Response:
    """Tag a read's response; answer 304 when the client's ``If-None-Match`` matches."""
    response.set_etag(representation_etag(data))
    response.make_conditional(request)  # turns it into a 304 in place when it matches
    return response


def check_if_match(current: object) -> None:
    """Refuse (412) a write whose ``If-Match`` names another version of ``current``.

    Without ``If-Match`` the write goes ahead (clients opt in) and nothing is computed;
    ``If-Match: *`` only needs the resource to exist, which the caller has already checked.
    """
    condition = request.if_match
    if (
        condition
        and not condition.star_tag
        and not condition.is_strong(representation_etag(current))
    ):
        raise PreconditionFailed(STALE)


def tagged(response: Response, data: object) -> Response:
    """Add the ETag of a representation just written."""
    response.set_etag(representation_etag(data))
    return response
