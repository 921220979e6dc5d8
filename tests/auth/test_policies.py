"""The rules of auth.policies: truth tables for each kind of Principal, and bad arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, request

from auth import (
    Principal,
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

SESSION = Principal(
    kind="session",
    subject="u-1",
    scopes=frozenset({"items:read"}),
    claims={"sub": "u-1", "uid": "u-1", "scopes": ["items:read"]},
)
USER = Principal(
    kind="user",
    subject="42",
    roles=frozenset({"admin", "staff"}),
    scopes=frozenset({"items:read", "items:write"}),
    claims={
        "sub": "42",
        "roles": ["admin", "staff"],
        "patient_id": "p-1",
        "groups": ["g-1", "g-2"],
        "level": 3,
        "nested": {"p-1": True},
    },
)
API_KEY = Principal(
    kind="api_key",
    subject="service:ci",
    scopes=frozenset({"deploy"}),
    claims={"sub": "service:ci", "key_id": "abc", "owner": "ci"},
)
PRINCIPALS = {"session": SESSION, "user": USER, "api_key": API_KEY}


def evaluate(
    subject: Rule,
    principal: Principal,
    path: dict[str, Any] | None = None,
    query: str = "",
    body: object = None,
    env: str = "development",
) -> bool:
    """Run a rule inside a request with these URL parameters, query and JSON body."""
    app = Flask(__name__)
    app.config["APP_ENV"] = env
    options: dict[str, Any] = {"query_string": query}
    if body is not None:
        options["json"] = body
    with app.test_request_context("/x", method="POST", **options):
        request.view_args = dict(path or {})
        return subject(principal)


# (rule, expected for session, user, api_key) with no request context beyond the Principal.
CLAIM_TABLE: list[tuple[str, Rule, tuple[bool, bool, bool]]] = [
    ("one scope held by session and user", scopes_present("items:read"), (True, True, False)),
    ("all listed needed", scopes_present(["items:read", "items:write"]), (False, True, False)),
    ("space-separated string", scopes_present("items:read items:write"), (False, True, False)),
    ("api key scope", scopes_present(required_scopes="deploy"), (False, False, True)),
    ("any of the roles", roles_present(["admin", "auditor"]), (False, True, False)),
    ("claim present", key_present("sub"), (True, True, True)),
    ("claim absent", key_present("patient_id"), (False, True, False)),
    ("claim value", key_contains_value("patient_id", "p-1"), (False, True, False)),
    ("claim wrong value", key_contains_value("patient_id", "p-2"), (False, False, False)),
    ("list claim contains", key_contains_value("groups", "g-2"), (False, True, False)),
    ("int claim as text", key_contains_value("level", "3"), (False, True, False)),
    ("value in list", key_contains_value_in_list("owner", ["ci", "cd"]), (False, False, True)),
    ("none in list", key_contains_value_in_list("owner", ["cd"]), (False, False, False)),
    ("list meets list", key_contains_value_in_list("groups", ["g-9", "g-1"]), (False, True, False)),
    ("or_ of two", or_(key_present("uid"), key_present("key_id")), (True, False, True)),
    ("and_ of two", and_(key_present("sub"), scopes_present("items:write")), (False, True, False)),
    ("nested and_/or_",
     or_(and_(roles_present("staff"), key_present("level")), scopes_present("deploy")),
     (False, True, True)),
    ("match_keys with no keys", match_keys(), (True, True, True)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "subject", "expected"), CLAIM_TABLE, ids=[c[0] for c in CLAIM_TABLE]
)
@pytest.mark.parametrize("kind", ["session", "user", "api_key"])
def test_claim_rules_truth_table(
    name: str, subject: Rule, expected: tuple[bool, bool, bool], kind: str
) -> None:
    index = ["session", "user", "api_key"].index(kind)
    assert evaluate(subject, PRINCIPALS[kind]) is expected[index]


@pytest.mark.parametrize(
    ("path", "principal", "expected"),
    [
        ({"patient_id": "p-1"}, USER, True),
        ({"patient_id": "p-2"}, USER, False),
        ({}, USER, False),  # the URL lacks the parameter
        ({"patient_id": "p-1"}, SESSION, False),  # the caller lacks the claim
        ({"patient_id": "p-1"}, API_KEY, False),
    ],
)
def test_match_keys_and_compare_keys(
    path: dict[str, Any], principal: Principal, expected: bool
) -> None:
    assert evaluate(match_keys(patient_id="patient_id"), principal, path) is expected
    assert evaluate(compare_keys(patient_id="patient_id"), principal, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [({"group": "g-1"}, True), ({"group": "g-3"}, False), ({"nested": "p-1"}, False)],
)
def test_match_keys_on_list_claims_is_membership(path: dict[str, Any], expected: bool) -> None:
    assert evaluate(match_keys(group="groups", nested="nested"), USER, path) is False
    param = next(iter(path))
    claim = {"group": "groups", "nested": "nested"}[param]
    assert evaluate(match_keys(**{param: claim}), USER, path) is expected


def test_match_keys_compares_int_url_parameters_as_text() -> None:
    assert evaluate(match_keys(id="level"), USER, {"id": 3}) is True
    assert evaluate(match_keys(id="level"), USER, {"id": 4}) is False


@pytest.mark.parametrize(
    ("claim", "given", "expected"),
    [("p-1", "p-1", True), ("p-1", "p-2", False), ("p-1", None, False), (None, "p-1", False),
     (None, None, False)],
)  # fmt: skip
def test_field_in_path_and_body_match_claim(
    claim: str | None, given: str | None, expected: bool
) -> None:
    principal = Principal(kind="user", subject="s", claims={"patient_id": claim})
    in_path = field_in_path_matches_jwt_claim("patient_uuid", "patient_id")
    in_body = field_in_body_matches_jwt_claim("patient_uuid", "patient_id")
    path = {"patient_uuid": given} if given is not None else {}
    assert evaluate(in_path, principal, path) is expected
    assert evaluate(in_body, principal, body={"patient_uuid": given}) is expected


def test_field_in_body_with_a_non_object_body_fails() -> None:
    rule_ = field_in_body_matches_jwt_claim("patient_uuid", "patient_id")
    assert evaluate(rule_, USER, body=["p-1"]) is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [("format=short", True), ("format=SHORT", True), ("format=long", False), ("other=short", False),
     ("a=1&format=Short", True)],
)  # fmt: skip
def test_argument_present_ignores_case(query: str, expected: bool) -> None:
    for principal in PRINCIPALS.values():
        assert evaluate(argument_present("format", "short"), principal, query=query) is expected


@pytest.mark.parametrize(("query", "expected"), [("", True), ("debug=1", False), ("debug=", False)])
def test_argument_not_present(query: str, expected: bool) -> None:
    assert evaluate(argument_not_present("debug"), SESSION, query=query) is expected


@pytest.mark.parametrize(
    ("env", "production", "other"), [("production", True, False), ("development", False, True)]
)
def test_environment_rules(env: str, production: bool, other: bool) -> None:
    assert evaluate(production_only_route(), USER, env=env) is production
    assert evaluate(non_production_only_route(), USER, env=env) is other


def test_custom_rule_and_the_missing_requirement_named() -> None:
    @rule("a subject starting with 4")
    def starts_with_four(principal: Principal) -> bool:
        return principal.subject.startswith("4")

    assert evaluate(starts_with_four, USER) is True
    assert evaluate(starts_with_four, SESSION) is False
    combined = and_(scopes_present("items:read"), starts_with_four)
    assert combined.check(USER) is None
    assert combined.check(SESSION) == "a subject starting with 4"
    assert scopes_present(["items:read", "deploy", "admin:all"]).check(USER) == (
        "the scope(s) admin:all, deploy"
    )


def test_failure_messages_never_hold_claim_values() -> None:
    secret_value = "p-1"
    rules = [
        key_contains_value("patient_id", "p-9"),
        key_contains_value_in_list("patient_id", ["p-8", "p-9"]),
        field_in_path_matches_jwt_claim("pid", "patient_id"),
    ]
    app = Flask(__name__)
    with app.test_request_context("/x"):
        request.view_args = {"pid": "p-7"}
        for each in rules:
            message = each.check(USER)
            assert message is not None and secret_value not in message


BAD_ARGUMENTS: list[tuple[Callable[[], object], type[Exception]]] = [
    (lambda: scopes_present([]), ValueError),
    (lambda: scopes_present(""), ValueError),
    (lambda: scopes_present(["ok", ""]), ValueError),
    (lambda: scopes_present(["ok", 3]), TypeError),  # type: ignore[list-item]
    (lambda: key_present(""), ValueError),
    (lambda: key_contains_value("k", 5), TypeError),  # type: ignore[arg-type]
    (lambda: key_contains_value_in_list("k", []), ValueError),
    (lambda: key_contains_value_in_list("k", [None]), TypeError),  # type: ignore[list-item]
    (lambda: match_keys(pid=1), TypeError),  # type: ignore[arg-type]
    (lambda: argument_present("a", None), TypeError),  # type: ignore[arg-type]
    (lambda: and_(), ValueError),
    (lambda: or_(scopes_present("a"), "b"), TypeError),  # type: ignore[arg-type]
    (lambda: protected_route(credentials="password"), ValueError),
    (lambda: protected_route(credentials=[]), ValueError),
    (lambda: protected_route(roles=[]), ValueError),
    (lambda: protected_route(allowed_issuers=[""]), ValueError),
    (lambda: protected_route(lambda principal: True), TypeError),  # type: ignore[arg-type]
    (lambda: protected_route(patient_id=7), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("make", "error"), BAD_ARGUMENTS)
def test_bad_arguments_raise_at_decoration_time(
    make: Callable[[], object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make()


def test_protected_route_without_parentheses_says_what_to_write() -> None:
    def view() -> str:
        return "x"

    with pytest.raises(TypeError, match="parentheses"):
        protected_route(view)  # type: ignore[arg-type]
