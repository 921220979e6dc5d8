"""The admin pages' forms (Flask-WTF): every POST form carries a CSRF token; filters are GETs."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    Field,
    Form,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from api.routes.auth import MAX_SECRET_INPUT
from api.validation import MAX_PAGE
from database.sql.identity import EMAIL_LENGTH, USERNAME_LENGTH

# Status filter of the access log: one status (404) or a class of them (4xx).
STATUS_FILTER = re.compile(r"([1-5])(\d\d|xx)\Z", re.IGNORECASE)


class CheckboxesField(SelectMultipleField):
    """Several choices as a list of checkboxes (each with its own label)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _username() -> StringField:
    """The username field, bounded like the API's."""
    return StringField(
        "Username",
        [DataRequired("Enter a username."), Length(max=USERNAME_LENGTH)],
        description="At least 3 characters: letters, digits, dots, dashes, _ and @.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )


def _email() -> StringField:
    """The optional email field."""
    return StringField(
        "Email (optional)",
        [Optional(), Length(max=EMAIL_LENGTH)],
        render_kw={"autocomplete": "off", "type": "email"},
    )


def _new_password(label: str = "Password") -> PasswordField:
    """A new password; the policy itself is the service's (the message says what is wrong)."""
    return PasswordField(
        label,
        [DataRequired("Enter a password."), Length(max=MAX_SECRET_INPUT)],
        description="10 to 128 characters; not the username, not a common password.",
        render_kw={"autocomplete": "new-password"},
    )


def _confirmation() -> PasswordField:
    """The new password typed again."""
    return PasswordField(
        "Repeat the password",
        [DataRequired("Repeat the password."), EqualTo("password", "The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


def _roles() -> CheckboxesField:
    """The roles, as checkboxes (choices set per request from the roles that exist)."""
    return CheckboxesField("Roles", choices=[], validate_choice=True)


class LoginForm(FlaskForm):
    """Log in with an administrator's username and password."""

    username = StringField(
        "Username",
        [DataRequired("Enter your username."), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        [DataRequired("Enter your password."), Length(max=MAX_SECRET_INPUT)],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()


class UserCreateForm(FlaskForm):
    """Add a user."""

    username = _username()
    email = _email()
    password = _new_password()
    confirm = _confirmation()
    roles = _roles()
    is_active = BooleanField("Active (can log in)", default=True)


class UserEditForm(FlaskForm):
    """Change a user's username and email."""

    username = _username()
    email = _email()


class RolesForm(FlaskForm):
    """Give a user exactly the ticked roles."""

    roles = _roles()


class PasswordForm(FlaskForm):
    """Set a user's password."""

    password = _new_password("New password")
    confirm = _confirmation()


class RoleCreateForm(FlaskForm):
    """Create a role."""

    name = StringField(
        "Name",
        [DataRequired("Enter a name."), Length(max=64)],
        description="Lower-case letters, digits and _ . : -, starting with a letter.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    description = StringField("Description (optional)", [Optional(), Length(max=255)])
    scopes = StringField(
        "Scopes (optional)",
        [Optional(), Length(max=2000)],
        description="Separated by spaces, e.g. items:read items:write",
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class ApiKeyCreateForm(FlaskForm):
    """Create an API key for a user or a service."""

    name = StringField(
        "Name",
        [DataRequired("Give the key a name."), Length(max=100)],
        description="What the key is for, e.g. ci-deploy",
        render_kw={"autocomplete": "off"},
    )
    owner_kind = RadioField(
        "The key belongs to",
        choices=[SelectChoice("user", "A user"), SelectChoice("service", "A service")],
        default="user",
        validators=[InputRequired("Choose who the key belongs to.")],
    )
    # No Optional(): it would stop the checks below that depend on owner_kind.
    owner = StringField(
        "Username (for a user's key)",
        [Length(max=USERNAME_LENGTH)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    service = StringField(
        "Service name (for a service's key)",
        [Length(max=100)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    scopes = StringField(
        "Scopes",
        [Optional(), Length(max=2000)],
        description="Separated by spaces; a user's key holds at most the user's scopes.",
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    expires_in_days = IntegerField(
        "Expires in (days, optional)",
        [Optional(), NumberRange(min=1, max=3650)],
        description="Default: API_KEY_TTL_DAYS.",
    )

    def validate_owner(self, field: Field) -> None:
        """A user's key names the user."""
        if self.owner_kind.data == "user" and not (field.data or "").strip():
            raise ValidationError("Enter the username of the key's owner.")

    def validate_service(self, field: Field) -> None:
        """A service's key names the service."""
        if self.owner_kind.data == "service" and not (field.data or "").strip():
            raise ValidationError("Enter the name of the service.")


class UserSearchForm(Form):
    """``?q=&page=`` of the users list (a GET: no CSRF token)."""

    q = StringField("Search usernames and emails", [Optional(), Length(max=254)])
    page = IntegerField("Page", [Optional(), NumberRange(min=1, max=MAX_PAGE)], default=1)


class ApiKeyFilterForm(Form):
    """``?owner=&include_revoked=`` of the API keys list."""

    # Own ids: the create form on the same page has an "owner" field too.
    owner = StringField(
        "Owner's username", [Optional(), Length(max=USERNAME_LENGTH)], id="filter-owner"
    )
    include_revoked = BooleanField("Include revoked keys", id="filter-include-revoked")


class AccessLogFilterForm(Form):
    """``?user=&status=&since=&until=&page=`` of the access log."""

    user = StringField("Username", [Optional(), Length(max=USERNAME_LENGTH)])
    status = StringField(
        "Status",
        [Optional(), Regexp(STATUS_FILTER, message="Write a status (404) or a class (4xx).")],
        description="One status (404) or a class (4xx).",
    )
    since = DateTimeLocalField("From (UTC)", [Optional()], format="%Y-%m-%dT%H:%M")
    until = DateTimeLocalField("Until (UTC)", [Optional()], format="%Y-%m-%dT%H:%M")
    page = IntegerField("Page", [Optional(), NumberRange(min=1, max=MAX_PAGE)], default=1)

    def validate_until(self, field: Field) -> None:
        """The window must not end before it starts."""
        if field.data and self.since.data and field.data <= self.since.data:
            raise ValidationError("The end must come after the start.")

    def status_range(self) -> tuple[int | None, int | None]:
        """The status filter as a range: 404 -> (404, 404), 4xx -> (400, 499)."""
        match = STATUS_FILTER.fullmatch((self.status.data or "").strip().lower())
        if match is None:
            return None, None
        if match.group(2) == "xx":
            low = int(match.group(1)) * 100
            return low, low + 99
        return int(match.group(0)), int(match.group(0))


def set_role_choices(field: SelectMultipleField, names: Iterable[str]) -> None:
    """Offer these role names as the field's choices."""
    field.choices = [SelectChoice(name) for name in names]
