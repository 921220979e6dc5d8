"""Authentication and authorization: tokens, the Principal, and the rules on it.

``from auth.auth import requires_auth, create_enc_token, decrypt`` (the original names);
the rules are re-exported here: ``from auth import protected_route, scopes_present, and_``.
"""

from auth.policies import (
    AuthRequirement,
    Rule,
    and_,
    argument_not_present,
    argument_present,
    compare_keys,
    field_in_body_matches_jwt_claim,
    field_in_path_matches_jwt_claim,
    key_contains_value,
    key_contains_value_in_list,
    key_present,
    match_keys,
    non_production_only_route,
    or_,
    production_only_route,
    protected_route,
    roles_present,
    rule,
    scopes_present,
)
from auth.principal import Principal, current_principal, require_principal

__all__ = [
    "AuthRequirement",
    "Principal",
    "Rule",
    "and_",
    "argument_not_present",
    "argument_present",
    "compare_keys",
    "current_principal",
    "field_in_body_matches_jwt_claim",
    "field_in_path_matches_jwt_claim",
    "key_contains_value",
    "key_contains_value_in_list",
    "key_present",
    "match_keys",
    "non_production_only_route",
    "or_",
    "production_only_route",
    "protected_route",
    "require_principal",
    "roles_present",
    "rule",
    "scopes_present",
]
