"""Authorization rules on the ``Principal``, and ``protected_route`` that applies them.

A rule is a ``Rule``: a check of the caller (and, for some rules, of the request) that
answers None when it holds, or what is missing. Rules compose with ``and_`` / ``or_``, read
only the Principal (so they work for every kind of credential), and refuse bad arguments
when the module is imported, not at the first request. A failed rule is a 403
``permission_denied`` whose message names what was missing, never the caller's claim values.

    @bp.get("/api/patients/<patient_id>")
    @protected_route(and_(scopes_present("patients:read"), match_keys(patient_id="patient_id")))
    def get_patient(patient_id: str): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from flask import current_app, request

from auth.credentials import authenticate
from auth.errors import permission_denied
from auth.principal import Principal, credential_kinds

__all__ = [
    "AuthRequirement",
    "Rule",
    "and_",
    "argument_not_present",
    "argument_present",
    "compare_keys",
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
    "roles_present",
    "rule",
    "scopes_present",
]

P = ParamSpec("P")
R = TypeVar("R")
Check = Callable[[Principal], "str | None"]
PRODUCTION = "production"


@dataclass(frozen=True)
class Rule:
    """A condition on the caller: ``check`` returns None when it holds, else what is missing.

    ``requirement`` says what the rule needs in words (for messages and the API docs);
    ``scopes`` the scopes it certainly needs (listed per operation in the API docs).
    """

    requirement: str
    check: Check
    scopes: frozenset[str] = frozenset()

    def __call__(self, principal: Principal) -> bool:
        """True when the rule holds for ``principal`` (inside a request)."""
        return self.check(principal) is None


def rule(requirement: str) -> Callable[[Callable[[Principal], bool]], Rule]:
    """Turn your own ``(Principal) -> bool`` function into a Rule that says what it needs.

    ``@rule("an account older than a week")`` over ``def seasoned(principal): ...``
    """
    _require_text(requirement, "requirement")

    def decorator(test: Callable[[Principal], bool]) -> Rule:
        return _holds(requirement, test)

    return decorator


def _holds(requirement: str, test: Callable[[Principal], bool]) -> Rule:
    """A Rule whose failure message is its requirement."""
    return Rule(requirement, lambda principal: None if test(principal) else requirement)


# --- composition -------------------------------------------------------------------------


def and_(*rules: Rule) -> Rule:
    """Every rule must hold; the message names the first that does not."""
    _require_rules(rules, "and_")

    def check(principal: Principal) -> str | None:
        for each in rules:
            missing = each.check(principal)
            if missing is not None:
                return missing
        return None

    needed = frozenset().union(*(each.scopes for each in rules))
    return Rule(" and ".join(each.requirement for each in rules), check, needed)


def or_(*rules: Rule) -> Rule:
    """At least one rule must hold."""
    _require_rules(rules, "or_")
    requirement = "one of: " + "; or ".join(each.requirement for each in rules)

    def check(principal: Principal) -> str | None:
        if any(each.check(principal) is None for each in rules):
            return None
        return requirement

    return Rule(requirement, check)


# --- scopes and roles ----------------------------------------------------------------------


def scopes_present(required_scopes: str | Iterable[str]) -> Rule:
    """Every listed scope must be granted ("a b" or ["a", "b"]); the message lists the missing."""
    scopes = _text_set(required_scopes, "required_scopes", split=True)

    def check(principal: Principal) -> str | None:
        missing = sorted(scopes - principal.scopes)
        return f"the scope(s) {', '.join(missing)}" if missing else None

    return Rule(f"the scope(s) {', '.join(sorted(scopes))}", check, scopes)


def roles_present(roles: str | Iterable[str]) -> Rule:
    """The caller must hold at least one of ``roles``."""
    wanted = _text_set(roles, "roles", split=False)
    requirement = f"one of the roles {', '.join(sorted(wanted))}"
    return _holds(requirement, lambda principal: principal.has_role(*wanted))


# --- claims ----------------------------------------------------------------------------------


def key_present(key: str) -> Rule:
    """The claim ``key`` must be present."""
    _require_text(key, "key")
    return _holds(f"the claim '{key}'", lambda principal: key in principal.claims)


def key_contains_value(key: str, value: str) -> Rule:
    """The claim ``key`` must equal ``value`` (or, for a list claim, contain it)."""
    _require_text(key, "key")
    _require_text(value, "value")
    return _holds(
        f"the claim '{key}' with the required value",
        lambda principal: value in _claim_values(principal.claims.get(key)),
    )


def key_contains_value_in_list(key: str, values: Iterable[str]) -> Rule:
    """The claim ``key`` must be one of ``values`` (or, for a list claim, contain one)."""
    _require_text(key, "key")
    allowed = _text_set(values, "values", split=False)
    return _holds(
        f"the claim '{key}' with one of the required values",
        lambda principal: not allowed.isdisjoint(_claim_values(principal.claims.get(key))),
    )


def match_keys(**route_params_to_claims: str) -> Rule:
    """Each URL parameter must match the claim named for it (a list claim must contain it).

    ``match_keys(patient_id="patient_id")``: the ``<patient_id>`` of the URL must be the
    caller's ``patient_id`` claim. With no arguments it always holds.
    """
    for param, claim in route_params_to_claims.items():
        _require_text(claim, f"the claim name for {param!r}")

    def check(principal: Principal) -> str | None:
        path = request.view_args or {}
        for param, claim in route_params_to_claims.items():
            if param not in path or not _matches(path[param], principal.claims.get(claim)):
                return f"the claim '{claim}' to match the URL's '{param}'"
        return None

    pairs = ", ".join(
        f"'{claim}' = URL '{param}'" for param, claim in route_params_to_claims.items()
    )
    return Rule(f"the claims {pairs}" if pairs else "nothing more", check)


def compare_keys(**route_params_to_claims: str) -> Rule:
    """The default rule of ``protected_route(**claims_map)``: same meaning as ``match_keys``."""
    return match_keys(**route_params_to_claims)


def field_in_path_matches_jwt_claim(path_field_name: str, jwt_claim_name: str) -> Rule:
    """The URL parameter ``path_field_name`` must equal the claim ``jwt_claim_name``."""
    _require_text(path_field_name, "path_field_name")
    _require_text(jwt_claim_name, "jwt_claim_name")

    def test(principal: Principal) -> bool:
        value = (request.view_args or {}).get(path_field_name)
        return _scalar_equal(value, principal.claims.get(jwt_claim_name))

    return _holds(f"the claim '{jwt_claim_name}' to match the URL's '{path_field_name}'", test)


def field_in_body_matches_jwt_claim(body_field_name: str, jwt_claim_name: str) -> Rule:
    """The JSON body's field ``body_field_name`` must equal the claim ``jwt_claim_name``."""
    _require_text(body_field_name, "body_field_name")
    _require_text(jwt_claim_name, "jwt_claim_name")

    def test(principal: Principal) -> bool:
        body = request.get_json(silent=True)
        value = body.get(body_field_name) if isinstance(body, dict) else None
        return _scalar_equal(value, principal.claims.get(jwt_claim_name))

    return _holds(f"the claim '{jwt_claim_name}' to match the body's '{body_field_name}'", test)


# --- the request and the deployment ------------------------------------------------------


def argument_present(argument: str, expected_value: str) -> Rule:
    """The query argument must be present with ``expected_value`` (compared ignoring case)."""
    _require_text(argument, "argument")
    _require_text(expected_value, "expected_value")
    expected = expected_value.casefold()

    def test(principal: Principal) -> bool:
        given = request.args.get(argument)
        return given is not None and given.casefold() == expected

    return _holds(f"the query argument '{argument}' with the required value", test)


def argument_not_present(argument: str) -> Rule:
    """The query argument must be absent."""
    _require_text(argument, "argument")
    return _holds(f"no query argument '{argument}'", lambda principal: argument not in request.args)


def production_only_route() -> Rule:
    """Holds only when APP_ENV is production."""
    return _holds(
        "a production deployment",
        lambda principal: current_app.config.get("APP_ENV") == PRODUCTION,
    )


def non_production_only_route() -> Rule:
    """Holds only outside production (development and test deployments)."""
    return _holds(
        "a non-production deployment",
        lambda principal: current_app.config.get("APP_ENV") != PRODUCTION,
    )


# --- the decorator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthRequirement:
    """What a protected view needs; kept on the view (``view.auth_requirement``) for the docs."""

    kinds: frozenset[str]
    scopes: frozenset[str]
    roles: frozenset[str]
    issuers: frozenset[str] | None
    rule: Rule | None

    def authorize(self, principal: Principal) -> None:
        """Raise a 403 naming what ``principal`` lacks; return when it may go on."""
        if self.issuers is not None and principal.issuer not in self.issuers:
            raise permission_denied(
                "Permission denied: this URL does not accept credentials from this issuer."
            )
        if self.rule is not None:
            missing = self.rule.check(principal)
            if missing is not None:
                raise permission_denied(f"Permission denied: this URL needs {missing}.")


def protected_route(
    rule: Rule | None = None,
    *,
    scopes: str | Iterable[str] | None = None,
    roles: str | Iterable[str] | None = None,
    allowed_issuers: Iterable[str] | None = None,
    credentials: str | Iterable[str] | None = None,
    **claims_map: str,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Authenticate the caller (401 without a valid credential), then apply the rules (403).

    ``rule``: a Rule (``and_(...)``, ``scopes_present(...)``...); ``scopes``: all needed;
    ``roles``: any one needed; ``allowed_issuers``: the ``iss`` values accepted;
    ``credentials``: the kinds accepted ("token", "api_key", or "session", "user",
    "external"; default all); ``claims_map``: URL parameters that must match claims
    (``compare_keys``). The view's own exceptions pass through untouched.
    """
    requirement = build_requirement(
        rule,
        scopes=scopes,
        roles=roles,
        allowed_issuers=allowed_issuers,
        credentials=credentials,
        claims_map=claims_map,
    )
    return guard(requirement)


def build_requirement(
    rule: Rule | None = None,
    *,
    scopes: str | Iterable[str] | None = None,
    roles: str | Iterable[str] | None = None,
    allowed_issuers: Iterable[str] | None = None,
    credentials: str | Iterable[str] | None = None,
    claims_map: dict[str, str] | None = None,
) -> AuthRequirement:
    """Check every argument now and combine them into one ``AuthRequirement``."""
    if rule is not None and not isinstance(rule, Rule):
        raise TypeError(
            f"protected_route takes a Rule (scopes_present(...), and_(...), ...), not "
            f"{type(rule).__name__}; write @protected_route() with parentheses, and wrap your "
            "own functions with @rule('what it needs')."
        )
    rules: list[Rule] = []
    role_set = frozenset[str]()
    if scopes is not None:
        rules.append(scopes_present(scopes))
    if roles is not None:
        role_set = _text_set(roles, "roles", split=False)
        rules.append(roles_present(role_set))
    if claims_map:
        rules.append(compare_keys(**claims_map))
    if rule is not None:
        rules.append(rule)
    issuers = None
    if allowed_issuers is not None:
        issuers = _text_set(allowed_issuers, "allowed_issuers", split=False)
    try:
        kinds = credential_kinds(credentials)
    except ValueError as exc:
        raise ValueError(f"protected_route: {exc}") from None
    combined = rules[0] if len(rules) == 1 else and_(*rules) if rules else None
    # The scopes the rules name (scopes_present and and_ collect them), for the docs.
    scope_set = combined.scopes if combined is not None else frozenset[str]()
    return AuthRequirement(kinds, scope_set, role_set, issuers, combined)


def guard(requirement: AuthRequirement) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The decorator that authenticates and authorizes before the view runs."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            requirement.authorize(authenticate(requirement.kinds))
            return view(*args, **kwargs)

        wrapper.auth_requirement = requirement  # type: ignore[attr-defined]
        return wrapper

    return decorator


# --- argument checks and comparisons --------------------------------------------------------


def _require_text(value: object, name: str) -> None:
    """Refuse a non-string or empty argument at decoration time."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}.")
    if not value.strip():
        raise ValueError(f"{name} is empty; give a non-empty string.")


def _require_rules(rules: tuple[object, ...], name: str) -> None:
    """``and_`` / ``or_`` need at least one Rule, and only Rules."""
    if not rules:
        raise ValueError(f"{name}() needs at least one rule.")
    for each in rules:
        if not isinstance(each, Rule):
            raise TypeError(
                f"{name}() takes Rules (e.g. scopes_present(...)), not {type(each).__name__}."
            )


def _text_set(values: str | Iterable[str], name: str, split: bool) -> frozenset[str]:
    """A non-empty set of non-empty strings; a string is one value (or, with ``split``, words)."""
    if isinstance(values, str):
        items = values.split() if split else [values]
    else:
        try:
            items = list(values)
        except TypeError:
            raise TypeError(f"{name} must be a string or a list of strings.") from None
    for item in items:
        _require_text(item, f"each of {name}")
    if not items:
        raise ValueError(f"{name} is empty; list at least one value.")
    return frozenset(items)


def _claim_values(claim: object) -> frozenset[str]:
    """A claim's values as strings: a scalar gives one, a list its scalars, others none."""
    items = claim if isinstance(claim, list | tuple) else [claim]
    texts = (_scalar_text(item) for item in items)
    return frozenset(text for text in texts if text is not None)


def _scalar_text(value: object) -> str | None:
    """Strings and whole numbers as text (URL parameters may be ints); anything else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


def _scalar_equal(given: object, claim: object) -> bool:
    """Two present scalars with the same text."""
    left, right = _scalar_text(given), _scalar_text(claim)
    return left is not None and left == right


def _matches(given: object, claim: object) -> bool:
    """A URL value against a claim: equal to a scalar claim, or a member of a list claim."""
    text = _scalar_text(given)
    return text is not None and text in _claim_values(claim)
