"""An example of composed rules: a caller reads only its own record, and needs a scope.

``GET /api/principals/<sub>`` answers what the API knows of the caller (kind, subject,
roles, scopes), for any kind of credential; the rule needs the scope ``principal:read`` and
the URL's ``sub`` to be the caller's own ``sub`` claim.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from api.validation import operation
from auth import and_, match_keys, protected_route, require_principal, scopes_present

principals_bp = Blueprint("principals", __name__)


class PrincipalOut(BaseModel):
    """What the API knows of a caller."""

    kind: str
    subject: str
    roles: list[str]
    scopes: list[str]


@principals_bp.get("/api/principals/<sub>")
@protected_route(and_(scopes_present("principal:read"), match_keys(sub="sub")))
@operation(responses={200: PrincipalOut})
def get_principal(sub: str) -> Response:
    """The caller's own Principal; 403 for anyone else's ``sub`` or without the scope."""
    principal = require_principal()
    return jsonify(
        kind=principal.kind,
        subject=principal.subject,
        roles=sorted(principal.roles),
        scopes=sorted(principal.scopes),
    )
