"""The admin pages: login, users, roles, logins (tokens), API keys and the stored access log.

Every view calls the services the API and the CLI call (``auth.users``, ``auth.families``,
``auth.apikeys``); a refused value comes back as a message next to its form field (422).
GETs never change anything; each change is a POST that redirects, with a flash message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Form

from api.admin import signin
from api.admin.blueprint import admin_bp, error_page
from api.admin.forms import (
    AccessLogFilterForm,
    ApiKeyCreateForm,
    ApiKeyFilterForm,
    LoginForm,
    PasswordForm,
    RoleCreateForm,
    RolesForm,
    UserCreateForm,
    UserEditForm,
    UserSearchForm,
    set_role_choices,
)
from api.ops.accesslog import access_log_reader
from api.ops.ratelimit import rate_limit
from api.routes.api_keys import lifetime
from api.routes.auth import count_password_check, login_ip_limit
from auth import families, users
from auth.apikeys import ApiKeyError, IssuedKey, api_keys
from auth.errors import AuthError, InvalidInput
from database.errors import ConflictError, NotFoundError
from database.sql.access_log import AccessLogQuery
from database.sql.identity import User

PER_PAGE = 20
# A form sent back with errors; a filter (GET) with bad values.
FORM_ERRORS = 422
BAD_FILTER = 400
Refusal = InvalidInput | ConflictError | ApiKeyError | NotFoundError
# What a form's change returns (never None: None says the change was refused).
Made = TypeVar("Made")
# The user page's forms, by the name its template knows them by.
UserPageForm = Literal["details", "roles", "password"]


def _admin() -> User:
    """The administrator using the page (``require_admin`` found them)."""
    admin: User = g.admin
    return admin


def _show_refusal(form: Form, exc: Refusal, field: str | None = None) -> None:
    """Put a service's refusal next to the form field it is about (else above the form)."""
    if field is None:
        if isinstance(exc, InvalidInput):
            field = exc.field
        elif isinstance(exc, ConflictError):
            field = exc.fields[0] if exc.fields else None
        elif isinstance(exc, ApiKeyError):
            field = exc.field
    aliases = {"new_password": "password", "expires_in": "expires_in_days"}
    name = aliases.get(field or "", field or "")
    messages = exc.problems if isinstance(exc, InvalidInput) else [str(exc)]
    if name in form:
        form[name].errors = [*form[name].errors, *messages]
    else:
        form.form_errors.extend(messages)


def _submitted(form: FlaskForm, change: Callable[[], Made]) -> Made | None:
    """What ``change`` returned, once it was made for a POSTed, valid form; else None, with
    the form's or the service's refusal shown next to its field."""
    if not form.validate_on_submit():
        return None
    try:
        return change()
    except (InvalidInput, ConflictError, ApiKeyError) as exc:
        _show_refusal(form, exc)
        return None


def _status(*forms: Form, filters: Form | None = None) -> int:
    """200; 400 when the page's filter has bad values; 422 when a form came back with errors."""
    if filters is not None and filters.errors:
        return BAD_FILTER
    return FORM_ERRORS if any(form.errors for form in forms) else 200


def _done(message: str, endpoint: str, user_id: str | None = None) -> Response:
    """After a change: the message for the next page, and a redirect to it (POST-redirect-GET)."""
    flash(message, "success")
    return redirect(url_for(endpoint, user_id=user_id) if user_id else url_for(endpoint))


def _role_names() -> list[str]:
    """Every role name, for the roles checkboxes."""
    return [role.name for role in users.list_roles()]


def _pages(total: int) -> int:
    """How many pages ``total`` rows fill (at least one)."""
    return max(1, math.ceil(total / PER_PAGE))


# --- signing in and out ------------------------------------------------------------------


def _local_target(target: str | None) -> str:
    """``target`` when it is one of these pages, else the users list (no open redirect)."""
    home = url_for("admin.users_list")
    if not target or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(url_for("admin.index")):
        return home
    return target


@admin_bp.get("/")
def index() -> Response:
    """The admin pages start with the users."""
    return redirect(url_for("admin.users_list"))


@admin_bp.route("/login", methods=["GET", "POST"])
@rate_limit(login_ip_limit, methods=["POST"])
def login() -> ResponseReturnValue:
    """Log in with an administrator's account (limited like POST /api/auth/login)."""
    form = LoginForm(next=request.args.get("next", ""))
    if request.method == "GET" and signin.signed_in_admin() is not None:
        return redirect(_local_target(form.next.data))
    if form.validate_on_submit():
        count_password_check(form.username.data)
        try:
            user = users.verify_login(form.username.data, form.password.data)
        except AuthError:
            form.form_errors.append(
                "The username or password is wrong, or the account is disabled."
            )
        else:
            if users.ADMIN_ROLE not in user.role_names:
                message = (
                    f"{user.username} has no {users.ADMIN_ROLE} role: these pages are for "
                    "administrators. Log in with an administrator's account."
                )
                return error_page(403, message), 403
            signin.sign_in(user)
            flash(f"Logged in as {user.username}.", "success")
            return redirect(_local_target(form.next.data))
    return render_template("admin/login.html", form=form), _status(form)


@admin_bp.post("/logout")
def logout() -> Response:
    """End this admin session (its login is revoked)."""
    signin.sign_out()
    return _done("You are logged out.", "admin.login")


# --- users -------------------------------------------------------------------------------


@admin_bp.get("/users")
def users_list() -> ResponseReturnValue:
    """Users by username, 20 a page; searched by username or email."""
    search = UserSearchForm(request.args)
    found: list[User] = []
    total = 0
    if search.validate():
        page = search.page.data or 1
        rows, total = users.list_users(search.q.data, (page - 1) * PER_PAGE, PER_PAGE)
        found = list(rows)
    page = render_template(
        "admin/users.html", search=search, users=found, total=total, pages=_pages(total)
    )
    return page, _status(filters=search)


@admin_bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> ResponseReturnValue:
    """Add a user with roles."""
    form = UserCreateForm()
    set_role_choices(form.roles, _role_names())
    user = _submitted(
        form,
        lambda: users.create_user(
            form.username.data,
            form.password.data,
            email=form.email.data or None,
            roles=form.roles.data,
            is_active=form.is_active.data,
        ),
    )
    if user is not None:
        return _done(f"Added the user {user.username}.", "admin.user_page", user_id=user.id)
    return render_template("admin/user_new.html", form=form), _status(form)


def _user_page(user: User, **given: FlaskForm) -> ResponseReturnValue:
    """The user's page; ``given`` forms (sent back with errors) replace the blank ones."""
    forms: dict[str, FlaskForm] = {
        "details": UserEditForm(formdata=None, obj=user),
        "roles": RolesForm(formdata=None, roles=sorted(user.role_names)),
        "password": PasswordForm(formdata=None),
    }
    forms.update(given)
    set_role_choices(forms["roles"].roles, _role_names())
    keys = api_keys().listed(owner=user)
    page = render_template("admin/user.html", user=user, keys=keys, **forms)
    return page, _status(*given.values())


def _user_form_sent(
    user: User, name: UserPageForm, form: FlaskForm, change: Callable[[], User], message: str
) -> ResponseReturnValue:
    """One of the user page's forms (``name``) was POSTed: once ``change`` is made, back to
    the page with ``message``; else the page with ``form`` showing why (422)."""
    if _submitted(form, change) is None:
        return _user_page(user, **{name: form})
    return _done(message, "admin.user_page", user_id=user.id)


@admin_bp.get("/users/<user_id>")
def user_page(user_id: str) -> ResponseReturnValue:
    """One user: details, roles, password, state, and links to their logins and keys."""
    return _user_page(users.get_user(user_id))


@admin_bp.post("/users/<user_id>")
def user_update(user_id: str) -> ResponseReturnValue:
    """Change the username or email (a rename ends the user's logins)."""
    user = users.get_user(user_id)
    form = UserEditForm()

    def update() -> User:
        email = (form.email.data or "").strip()
        return users.update_user(
            user, username=form.username.data, email=email or None, clear_email=not email
        )

    return _user_form_sent(user, "details", form, update, "Saved the details.")


@admin_bp.post("/users/<user_id>/roles")
def user_roles(user_id: str) -> ResponseReturnValue:
    """Give the user exactly the ticked roles (their logins end)."""
    user = users.get_user(user_id)
    form = RolesForm()
    set_role_choices(form.roles, _role_names())

    # The service refuses to take the role from the last active administrator (409).
    return _user_form_sent(
        user, "roles", form, lambda: users.set_roles(user, form.roles.data), "Saved the roles."
    )


@admin_bp.post("/users/<user_id>/password")
def user_password(user_id: str) -> ResponseReturnValue:
    """Set the user's password (policy as in the API); their other logins end."""
    user = users.get_user(user_id)
    form = PasswordForm()
    # Setting one's own password keeps this admin session (the API keeps the caller's too).
    keep = signin.current_login_id() if user.id == _admin().id else None
    return _user_form_sent(
        user,
        "password",
        form,
        lambda: users.set_password(user, form.password.data, keep_family=keep),
        f"Set the password of {user.username}; their logins were ended.",
    )


@admin_bp.post("/users/<user_id>/deactivate")
def user_deactivate(user_id: str) -> Response:
    """Disable the account: it cannot log in, and its logins end."""
    user = users.get_user(user_id)
    try:
        users.deactivate_user(user)
    except ConflictError as exc:  # the last active administrator
        flash(str(exc), "error")
    else:
        flash(f"Deactivated {user.username}; their logins were ended.", "success")
    return redirect(url_for("admin.user_page", user_id=user.id))


@admin_bp.post("/users/<user_id>/activate")
def user_activate(user_id: str) -> Response:
    """Let a deactivated account log in again."""
    user = users.update_user(users.get_user(user_id), is_active=True)
    return _done(f"Reactivated {user.username}.", "admin.user_page", user_id=user.id)


@admin_bp.get("/users/<user_id>/delete")
def user_delete_confirm(user_id: str) -> ResponseReturnValue:
    """Ask before deleting (a page, so that it works without JavaScript)."""
    user = users.get_user(user_id)
    return render_template("admin/user_delete.html", user=user)


@admin_bp.post("/users/<user_id>/delete")
def user_delete(user_id: str) -> Response:
    """Delete the user, their logins and their API keys."""
    user = users.get_user(user_id)
    name = user.username
    try:
        users.delete_user(user)
    except ConflictError as exc:  # the last active administrator
        flash(str(exc), "error")
        return redirect(url_for("admin.user_page", user_id=user_id))
    return _done(f"Deleted the user {name}.", "admin.users_list")


# --- logins (refresh-token families) -----------------------------------------------------


@admin_bp.get("/users/<user_id>/logins")
def user_logins(user_id: str) -> ResponseReturnValue:
    """The user's logins: started, last used, expires, state; revoke one or all."""
    user = users.get_user(user_id)
    logins = [(login, families.login_state(login)) for login in families.user_logins(user.id)]
    return render_template(
        "admin/logins.html",
        user=user,
        logins=logins,
        active=families.ACTIVE,
        this_login=signin.current_login_id(),
    )


@admin_bp.post("/users/<user_id>/logins/<login_id>/revoke")
def login_revoke(user_id: str, login_id: str) -> Response:
    """End one login: its refresh token and access tokens are refused from now on."""
    user = users.get_user(user_id)
    families.revoke_user_login(user.id, login_id)
    return _done("Revoked the login; its tokens are refused.", "admin.user_logins", user_id=user.id)


@admin_bp.post("/users/<user_id>/logins/revoke-all")
def logins_revoke_all(user_id: str) -> Response:
    """End every login of the user."""
    user = users.get_user(user_id)
    families.revoke_user_families(user.id, families.BY_ADMINISTRATOR)
    return _done(
        f"Revoked every login of {user.username}; their tokens are refused.",
        "admin.user_logins",
        user_id=user.id,
    )


# --- roles -------------------------------------------------------------------------------


@admin_bp.route("/roles", methods=["GET", "POST"])
def roles() -> ResponseReturnValue:
    """The roles and the scopes each grants; create a role."""
    form = RoleCreateForm()

    scopes = (form.scopes.data or "").split()
    role = _submitted(
        form, lambda: users.create_role(form.name.data, form.description.data or None, scopes)
    )
    if role is not None:
        return _done(f"Created the role {role.name}.", "admin.roles")
    return render_template("admin/roles.html", form=form, roles=users.list_roles()), _status(form)


# --- API keys ----------------------------------------------------------------------------


def _api_keys_page(create: ApiKeyCreateForm) -> ResponseReturnValue:
    """The keys (filtered by ``?owner=&include_revoked=``) and the form to create one."""
    filters = ApiKeyFilterForm(request.args)
    owner = None
    if filters.validate() and filters.owner.data:
        try:
            owner = users.find_user(filters.owner.data)
        except NotFoundError as exc:
            _show_refusal(filters, exc, "owner")
    keys = []
    if not filters.errors:
        keys = api_keys().listed(owner=owner, include_revoked=bool(filters.include_revoked.data))
    page = render_template("admin/api_keys.html", filters=filters, keys=keys, form=create)
    return page, _status(create, filters=filters)


@admin_bp.get("/api-keys")
def api_keys_list() -> ResponseReturnValue:
    """Every API key, newest first; create and revoke keys."""
    return _api_keys_page(ApiKeyCreateForm(formdata=None))


@admin_bp.post("/api-keys")
def api_key_create() -> ResponseReturnValue:
    """Create a key and show it this once (never stored, never shown again)."""
    form = ApiKeyCreateForm()

    def create() -> IssuedKey:
        for_user = form.owner_kind.data == "user"
        try:
            owner = users.find_user(form.owner.data) if for_user else None
        except NotFoundError as exc:
            raise InvalidInput("owner", str(exc)) from None
        return api_keys().create(
            form.name.data,
            form.scopes.data or "",
            owner=owner,
            service=None if for_user else form.service.data,
            expires_in=lifetime(form.expires_in_days.data),
            created_by=_admin().id,
        )

    issued = _submitted(form, create)
    if issued is not None:
        return render_template("admin/api_key_created.html", issued=issued), 201
    return _api_keys_page(form)


@admin_bp.post("/api-keys/<key_id>/revoke")
def api_key_revoke(key_id: str) -> Response:
    """Revoke a key: refused from the next request on, on every worker and instance."""
    record = api_keys().revoke(key_id)
    return _done(f"Revoked the API key {record.name} ({record.id}).", "admin.api_keys_list")


# --- stored access log -------------------------------------------------------------------


@admin_bp.get("/access-log")
def access_log() -> ResponseReturnValue:
    """Stored access records (ACCESS_LOG_DB=1), newest first; by user, status and time."""
    reader = access_log_reader(current_app)
    filters = AccessLogFilterForm(request.args)
    records: list[dict[str, object]] = []
    total = 0
    if reader is not None and filters.validate():
        uid = None
        if filters.user.data:
            try:
                uid = users.find_user(filters.user.data).id
            except NotFoundError as exc:
                _show_refusal(filters, exc, "user")
        if not filters.errors:
            low, high = filters.status_range()
            query = AccessLogQuery(uid, low, high, filters.since.data, filters.until.data)
            offset = ((filters.page.data or 1) - 1) * PER_PAGE
            records, total = reader.search(query, offset, PER_PAGE)
    names = users.usernames(str(record["uid"]) for record in records if record["uid"])
    page = render_template(
        "admin/access_log.html",
        stored=reader is not None,
        filters=filters,
        records=records,
        names=names,
        total=total,
        pages=_pages(total),
    )
    return page, _status(filters=filters)


def page_url(page: int) -> str:
    """This page's URL with another ``page`` (the other query parameters kept)."""
    arguments: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    arguments["page"] = page
    return url_for(str(request.endpoint), **arguments)


admin_bp.add_app_template_global(page_url)
