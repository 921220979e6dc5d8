"""The one place settings are read: environment (and ``.env``) -> validated Flask config."""

from __future__ import annotations

import math
import os
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values, find_dotenv

from auth.issuer_config import load_issuers

DEVELOPMENT = "development"
PRODUCTION = "production"
ENVIRONMENTS = (DEVELOPMENT, PRODUCTION)
SESSION_TYPES = ("filesystem", "redis")
# Rate-limit stores this app is written and tested for (memory for development, Redis shared).
RATELIMIT_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
SECRET_KEY_MIN_BYTES = 32
# A cautious estimate of a key's randomness (see estimated_entropy_bits): token_urlsafe(48)
# scores about 400, a 32-character hex key 128 (never below 88 in 200,000 tries), and
# "CHANGE_ME_CHANGE_ME_CHANGE_ME_CHANGE_ME" 65.
SECRET_KEY_MIN_BITS = 80
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
GENERATE_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
# Phrases of example values, compared in lower case without separators. Seven letters or
# more, so that a random key contains one by chance about once in a billion.
PLACEHOLDER_MARKERS = (
    "changeme", "replaceme", "placeholder", "example", "yoursecret", "secretkey",
    "keyhere", "secrethere", "notsecret", "insecure", "default", "password",
)  # fmt: skip
# Characters that repeat a stretch seen before, or continue a run or a sequence ("aaaa",
# "abcd", "4321"), add almost nothing; stretches of this length or more count as one.
PREDICTABLE_STRETCH = 3


class ConfigError(Exception):
    """Start-up refused: ``problems`` lists every bad or missing setting with how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"The application cannot start; fix these settings:\n{lines}")


Parser = Callable[[object], object]


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default, how to parse it, and what it is for."""

    name: str
    default: str | None
    parse: Parser
    help: str
    secret: bool = False


def parse_str(value: object) -> str:
    """Return the value as a stripped string."""
    return str(value).strip()


def parse_bool(value: object) -> bool:
    """Accept 1/0, true/false, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def parse_optional_bool(value: object) -> bool | None:
    """Like ``parse_bool``; blank means "not decided" (None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_bool(value)


def _whole_number(value: object, minimum: int, expected: str) -> int:
    """Parse an int of at least ``minimum``; ``expected`` says what was wanted."""
    if isinstance(value, bool):
        raise ValueError(expected)
    try:
        number = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ValueError(expected) from None
    if number < minimum:
        raise ValueError(expected)
    return number


def parse_positive_int(value: object) -> int:
    """Accept a whole number greater than zero."""
    return _whole_number(value, 1, "expected a whole number greater than zero")


def parse_count(value: object) -> int:
    """Accept a whole number zero or above."""
    return _whole_number(value, 0, "expected a whole number, 0 or more")


def parse_optional_count(value: object) -> int | None:
    """Accept a whole number zero or above; blank means "not decided" (None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _whole_number(value, 0, "expected a whole number, 0 or more")


def parse_positive_float(value: object) -> float:
    """Accept a number of seconds greater than zero, e.g. 1.5."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError("expected a number greater than zero, e.g. 1.5") from None
    if not number > 0:
        raise ValueError("expected a number greater than zero, e.g. 1.5")
    return number


def parse_rate_limit(value: object) -> str:
    """Accept Flask-Limiter's notation, e.g. '30/minute' or '5/second;100/hour'."""
    from limits import parse_many

    text = str(value).strip()
    parse_many(text)  # raises ValueError with the offending string
    return text


def parse_list(value: object) -> tuple[str, ...]:
    """Split a comma-separated list, dropping blanks."""
    if isinstance(value, list | tuple):
        return tuple(str(item).strip() for item in value if str(item).strip())
    return tuple(item.strip() for item in str(value).split(",") if item.strip())


def parse_json_text(value: object) -> object:
    """Keep JSON text as a stripped string (checked where it is used); data given in code as is."""
    return value if isinstance(value, list | dict) else str(value).strip()


def parse_choice(*choices: str) -> Parser:
    """Build a parser that accepts one of ``choices`` (case-insensitive)."""

    def parse(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return text

    return parse


# Every setting the application reads. README's settings table and .env.example follow this list.
SETTINGS: tuple[Setting, ...] = (
    # --- core ---
    Setting(
        "APP_ENV", DEVELOPMENT, parse_choice(*ENVIRONMENTS), "development (default) or production."
    ),
    Setting(
        "SECRET_KEY",
        None,
        parse_str,
        "At least 32 random bytes. Development generates one in instance/secret_key.",
        secret=True,
    ),
    Setting(
        "FLASK_DEBUG",
        "0",
        parse_bool,
        "Flask's debug mode (read by Flask itself); refused in production.",
    ),
    Setting(
        "INSTANCE_PATH",
        "",
        parse_str,
        "Folder for local state (secret key, session files, SQLite); default ./instance.",
    ),
    Setting(
        "LOG_LEVEL",
        "INFO",
        parse_choice("debug", "info", "warning", "error"),
        "Level of the application's log.",
    ),
    Setting(
        "MAX_CONTENT_LENGTH",
        str(1024 * 1024),
        parse_positive_int,
        "Largest accepted request body in bytes; larger bodies get 413.",
    ),
    Setting(
        "CORS_ORIGINS",
        "",
        parse_list,
        "Comma-separated origins allowed by CORS, e.g. https://app.example.com. None by default.",
    ),
    Setting(
        "CORS_ALLOW_CREDENTIALS",
        "0",
        parse_bool,
        "Let browsers send cookies on cross-origin requests (needs explicit origins).",
    ),
    # --- sessions and tokens ---
    Setting(
        "SESSION_TYPE",
        "filesystem",
        parse_choice(*SESSION_TYPES),
        "Server-side session store: filesystem (under instance/) or redis.",
    ),
    Setting(
        "REDIS_URL",
        "",
        parse_str,
        "Redis URL, e.g. redis://127.0.0.1:6379/0. Needed by SESSION_TYPE=redis.",
        secret=True,
    ),
    Setting(
        "SESSION_LIFETIME_SECONDS",
        "86400",
        parse_positive_int,
        "How long an idle server-side session (and so its tokens) lives.",
    ),
    Setting(
        "TOKEN_TTL_SECONDS",
        "900",
        parse_positive_int,
        "Lifetime of an issued token (its exp claim).",
    ),
    Setting(
        "TOKEN_ISSUER",
        "flask-jwe-api",
        parse_str,
        "The iss claim written into and required from tokens.",
    ),
    Setting(
        "TOKEN_LEEWAY_SECONDS",
        "10",
        parse_positive_int,
        "Clock skew tolerated when checking exp and nbf.",
    ),
    # --- api keys ---
    Setting(
        "API_KEY_TTL_DAYS",
        "90",
        parse_positive_int,
        "Lifetime of a new API key when none is given (every key expires).",
    ),
    Setting(
        "API_KEY_MAX_TTL_DAYS",
        "365",
        parse_positive_int,
        "Longest lifetime an API key may be given.",
    ),
    Setting(
        "ACCEPTED_API_KEY",
        "",
        parse_str,
        "One shared API key accepted in X-Api-Key besides the stored keys (the seeds' single-key "
        "mode); at least 32 random characters. Empty: off.",
        secret=True,
    ),
    Setting(
        "ACCEPTED_API_KEY_SCOPES",
        "",
        parse_str,
        "Space-separated scopes granted to ACCEPTED_API_KEY, e.g. 'items:read items:write'.",
    ),
    # --- users and login ---
    Setting(
        "ACCESS_TOKEN_TTL_SECONDS",
        "900",
        parse_positive_int,
        "Lifetime of a user's access token from POST /api/auth/login or /refresh.",
    ),
    Setting(
        "REFRESH_TOKEN_TTL_SECONDS",
        str(30 * 86400),
        parse_positive_int,
        "A refresh token expires after this long unused; each refresh starts it again.",
    ),
    Setting(
        "REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS",
        str(90 * 86400),
        parse_positive_int,
        "However often it is refreshed, a login ends this long after it began.",
    ),
    Setting(
        "REFRESH_TOKEN_REUSE_GRACE_SECONDS",
        "3",
        parse_count,
        "For this long after a refresh, the refresh token it spent is refused without "
        "revoking the login (concurrent tabs, a retried request); 0 turns it off.",
    ),
    # --- third-party token issuers ---
    Setting(
        "TOKEN_ISSUERS",
        "",
        parse_json_text,
        "JSON list of identity providers whose bearer tokens are accepted (README: Tokens from "
        "an identity provider); empty: none.",
    ),
    Setting(
        "TOKEN_ISSUERS_FILE",
        "",
        parse_str,
        "A JSON or YAML (.yaml/.yml) file holding that list, instead of TOKEN_ISSUERS.",
    ),
    Setting(
        "JWKS_CACHE_SECONDS",
        "3600",
        parse_positive_int,
        "How long an issuer's key set (JWKS) is used before it is fetched again.",
    ),
    Setting(
        "JWKS_MIN_REFETCH_SECONDS",
        "30",
        parse_positive_int,
        "A token with an unknown key id refetches its issuer's key set at most once per this "
        "many seconds (key rotation is seen at once; forged key ids cannot flood the provider).",
    ),
    # --- sql ---
    Setting(
        "DATABASE_URL",
        "",
        parse_str,
        "SQLAlchemy URL of the main database, e.g. postgresql://user:pass@host:5432/app "
        "(wins over setup_sql_db's arguments); default: SQLite file instance/app.db.",
        secret=True,
    ),
    Setting(
        "MSSQL_ODBC_DRIVER",
        "ODBC Driver 18 for SQL Server",
        parse_str,
        "ODBC driver name used for MSSQL URLs that do not name one (e.g. FreeTDS).",
    ),
    Setting(
        "SQL_CONNECT_TIMEOUT_SECONDS",
        "3",
        parse_positive_int,
        "How long opening a database connection may take before the request gets 503.",
    ),
    Setting(
        "SQL_QUERY_TIMEOUT_SECONDS",
        "15",
        parse_optional_count,
        "MySQL/MariaDB: longest wait for the server's answer before the request gets 503 (a "
        "hung server); 0 for no limit, e.g. for a long `flask db upgrade`.",
    ),
    Setting(
        "SQL_POOL_RECYCLE_SECONDS",
        "1800",
        parse_positive_int,
        "Pooled connections older than this are replaced (below the servers' idle timeouts).",
    ),
    Setting(
        "SQL_CREATE_TABLES",
        "",
        parse_optional_bool,
        "Create missing tables on the first request (db_create_all); default: in development "
        "only, and never on a database managed by migrations.",
    ),
    # --- mongodb ---
    Setting(
        "MONGO_URI",
        "",
        parse_str,
        "MongoDB connection string (mongodb:// or mongodb+srv://); empty: the Mongo routes "
        "answer 503. `make mongo-dev` starts a local server.",
        secret=True,
    ),
    Setting(
        "MONGO_DB",
        "",
        parse_str,
        "Default MongoDB database; empty: the one named in MONGO_URI, else app.",
    ),
    Setting(
        "MONGO_TIMEOUT_MS",
        "2000",
        parse_positive_int,
        "How long to wait for a MongoDB server before answering 503 (milliseconds).",
    ),
    # --- operations ---
    Setting(
        "LOG_FORMAT",
        "text",
        parse_choice("text", "json"),
        "text (default) or json: one JSON object per log line, for log collectors.",
    ),
    Setting(
        "TRUSTED_PROXIES",
        "",
        parse_optional_count,
        "How many proxies in front of the app set X-Forwarded-For/-Proto (0: none, use the "
        "socket address). Unset is logged at start-up.",
    ),
    Setting(
        "SERVER_TIMING",
        "",
        parse_optional_bool,
        "Tell clients how long the app took in a Server-Timing header; default: on except with "
        "APP_ENV=production, where any caller would learn it (durations still reach the access "
        "log and metrics).",
    ),
    Setting(
        "ACCESS_LOG",
        "1",
        parse_bool,
        "One log line per request on the api.access logger (monitoring URLs at DEBUG).",
    ),
    Setting(
        "ACCESS_LOG_DB",
        "0",
        parse_bool,
        "Also store access records in the SQL table access_log, written in the background.",
    ),
    Setting(
        "ACCESS_LOG_DB_URL",
        "",
        parse_str,
        "SQLAlchemy URL of the access-log database; default DATABASE_URL, else "
        "sqlite:///instance/access_log.db.",
        secret=True,
    ),
    Setting(
        "ACCESS_LOG_RETENTION_DAYS",
        "30",
        parse_positive_int,
        "Stored access records older than this are deleted (hourly, and by "
        "'flask access-log purge').",
    ),
    Setting(
        "METRICS_ENABLED",
        "1",
        parse_bool,
        "Prometheus metrics at GET /metrics (request count and latency per route).",
    ),
    Setting(
        "METRICS_TOKEN",
        "",
        parse_str,
        "When set, GET /metrics needs 'Authorization: Bearer <METRICS_TOKEN>'.",
        secret=True,
    ),
    Setting(
        "PROMETHEUS_MULTIPROC_DIR",
        "",
        parse_str,
        "Folder for prometheus-client's multiprocess mode; gunicorn.conf.py sets and wipes it.",
    ),
    Setting(
        "HEALTHCHECK_TIMEOUT_SECONDS",
        "1.5",
        parse_positive_float,
        "GET /healthcheck reports a check that has not answered by then as failed.",
    ),
    Setting(
        "RATELIMIT_ENABLED",
        "1",
        parse_bool,
        "Rate limits on /api/public and on routes decorated with @rate_limit.",
    ),
    Setting(
        "RATELIMIT_TOKEN",
        "30/minute",
        parse_rate_limit,
        "Limit per client IP on token issuing (GET /api/public), e.g. 30/minute.",
    ),
    Setting(
        "RATELIMIT_LOGIN_IP",
        "10/minute;100/hour",
        parse_rate_limit,
        "Limit per client IP on POST /api/auth/login and on the admin pages' login.",
    ),
    Setting(
        "RATELIMIT_LOGIN_USERNAME",
        "5/minute;30/hour",
        parse_rate_limit,
        "Limit per username on password checks, whatever the client IP: one count for "
        "POST /api/auth/login, PUT /api/auth/password and the admin pages' login.",
    ),
    Setting(
        "RATELIMIT_STORAGE_URI",
        "",
        parse_str,
        "Where counters live; default REDIS_URL when set (shared by all workers), else memory://.",
        secret=True,
    ),
    Setting(
        "RATELIMIT_KEY_PREFIX",
        "",
        parse_str,
        "Prefix of the rate-limit keys, for several apps sharing one Redis.",
    ),
    Setting(
        "DOCS_ENABLED",
        "",
        parse_optional_bool,
        "Serve the OpenAPI document at /openapi.json and Swagger UI at /docs; default: on in "
        "development, off in production.",
    ),
    Setting(
        "DOCS_TOKEN",
        "",
        parse_str,
        "When set, /openapi.json and /docs need it (Authorization: Bearer <DOCS_TOKEN>, or as "
        "the password of HTTP Basic in a browser).",
        secret=True,
    ),
    Setting("APP_VERSION", "", parse_str, "Version shown by /version; default: pyproject.toml."),
    Setting("GIT_COMMIT", "", parse_str, "Commit shown by /version (set it at build time)."),
    Setting("BUILD_ID", "", parse_str, "Build id shown by /version (set it at build time)."),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def read_environment(use_dotenv: bool = True) -> dict[str, str]:
    """Return the process environment laid over ``.env`` (the environment wins)."""
    values: dict[str, str] = {}
    if use_dotenv:
        path = find_dotenv(usecwd=True)
        if path:
            values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    return values


def load_settings(environ: Mapping[str, object]) -> dict[str, object]:
    """Parse and validate every setting; raise ``ConfigError`` listing all problems at once."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default)
        if raw is None:
            values[setting.name] = None
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "the given value" if setting.secret else repr(raw)
            problems.append(f"{setting.name}: {shown} is not valid ({exc}).")
    if not problems:
        problems.extend(_check_combinations(values))
        problems.extend(_load_token_issuers(values, environ))
    if problems:
        raise ConfigError(problems)
    return values


def _check_combinations(values: dict[str, object]) -> list[str]:
    """Rules that involve several settings, or that production adds."""
    problems: list[str] = []
    production = values["APP_ENV"] == PRODUCTION
    if values["SESSION_TYPE"] == "redis" and not values["REDIS_URL"]:
        problems.append(
            "REDIS_URL: SESSION_TYPE=redis needs it; set e.g. REDIS_URL=redis://127.0.0.1:6379/0."
        )
    origins = values["CORS_ORIGINS"]
    assert isinstance(origins, tuple)
    if "*" in origins and values["CORS_ALLOW_CREDENTIALS"]:
        problems.append(
            "CORS_ORIGINS: '*' cannot be combined with CORS_ALLOW_CREDENTIALS=1; "
            "list the allowed origins explicitly."
        )
    storage = str(values["RATELIMIT_STORAGE_URI"])
    if storage and storage.partition("://")[0].lower() not in RATELIMIT_SCHEMES:
        problems.append(
            f"RATELIMIT_STORAGE_URI: the scheme '{storage.partition('://')[0]}' is not supported; "
            "use memory:// or a redis:// URL (or leave it empty to use REDIS_URL)."
        )
    refresh_ttl, absolute_ttl = (
        values["REFRESH_TOKEN_TTL_SECONDS"],
        values["REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS"],
    )
    assert isinstance(refresh_ttl, int) and isinstance(absolute_ttl, int)
    if absolute_ttl < refresh_ttl:
        problems.append(
            f"REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS: {absolute_ttl} is shorter than "
            f"REFRESH_TOKEN_TTL_SECONDS ({refresh_ttl}); make it at least as long."
        )
    mongo_uri = str(values.get("MONGO_URI") or "")
    if mongo_uri and not mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
        problems.append(
            "MONGO_URI: it must start with mongodb:// or mongodb+srv://, "
            "e.g. mongodb://127.0.0.1:27017/app."
        )
    ttl, max_ttl = values["API_KEY_TTL_DAYS"], values["API_KEY_MAX_TTL_DAYS"]
    if isinstance(ttl, int) and isinstance(max_ttl, int) and ttl > max_ttl:
        problems.append(
            "API_KEY_TTL_DAYS: it is longer than API_KEY_MAX_TTL_DAYS; lower it or raise the "
            "maximum."
        )
    accepted = str(values["ACCEPTED_API_KEY"] or "")
    if accepted and (production or len(accepted) < SECRET_KEY_MIN_BYTES):
        problems.extend(_check_production_secret(accepted, "ACCEPTED_API_KEY"))
    if production:
        problems.extend(_check_production_secret(values["SECRET_KEY"]))
        if values["FLASK_DEBUG"]:
            problems.append("FLASK_DEBUG: debug mode exposes a console; turn it off in production.")
    return problems


def _load_token_issuers(values: dict[str, object], environ: Mapping[str, object]) -> list[str]:
    """Validate TOKEN_ISSUERS(_FILE) into ``IssuerConfig``s (kept in TOKEN_ISSUERS)."""
    leeway = values["TOKEN_LEEWAY_SECONDS"]
    assert isinstance(leeway, int)
    configs, problems = load_issuers(
        values["TOKEN_ISSUERS"],
        str(values["TOKEN_ISSUERS_FILE"]),
        environ,
        production=values["APP_ENV"] == PRODUCTION,
        default_leeway=leeway,
    )
    values["TOKEN_ISSUERS"] = configs
    return problems


def _check_production_secret(secret_key: object, name: str = "SECRET_KEY") -> list[str]:
    """A real secret: set, long enough, random, not copied from an example."""
    if not secret_key:
        return [f"{name}: production needs it set; {GENERATE_HINT}."]
    text = str(secret_key)
    if len(text.encode()) < SECRET_KEY_MIN_BYTES:
        return [f"{name}: it must be at least {SECRET_KEY_MIN_BYTES} bytes long; {GENERATE_HINT}."]
    letters = "".join(character for character in text.lower() if character.isalnum())
    if any(marker in letters for marker in PLACEHOLDER_MARKERS):
        return [f"{name}: it looks like a placeholder from an example; {GENERATE_HINT}."]
    bits = estimated_entropy_bits(text)
    if bits < SECRET_KEY_MIN_BITS:
        return [
            f"{name}: it is too predictable (repeats, runs or few different characters: "
            f"about {bits:.0f} bits of randomness, at least {SECRET_KEY_MIN_BITS} needed); "
            f"{GENERATE_HINT}."
        ]
    return []


def estimated_entropy_bits(text: str) -> float:
    """A cautious estimate of the random bits in ``text``.

    Each character is worth log2 of the alphabet its character classes imply (hex digits 16;
    otherwise lower case 26, upper case 26, digits 10, anything else 33), except that a
    stretch repeating earlier text, or continuing a run or a sequence, counts as one.
    """
    if not text:
        return 0.0
    tokens = 0
    position = 0
    while position < len(text):
        stretch = max(_repeat_length(text, position), _sequence_length(text, position))
        position += stretch if stretch >= PREDICTABLE_STRETCH else 1
        tokens += 1
    return tokens * math.log2(_alphabet_size(text))


def _alphabet_size(text: str) -> int:
    """How many symbols the characters of ``text`` were likely drawn from."""
    if all(c in string.hexdigits for c in text) and (text.islower() or text.isupper()):
        return 16  # hex digits in one case (token_hex, openssl rand -hex)
    classes = (
        (str.islower, 26),
        (str.isupper, 26),
        (str.isdigit, 10),
        (lambda c: not c.isalnum(), 33),
    )
    size = sum(width for test, width in classes if any(test(c) for c in text))
    return max(size, 2)


def _repeat_length(text: str, position: int) -> int:
    """Length of the longest stretch at ``position`` that also starts earlier in ``text``."""
    length = 0
    while position + length < len(text) and (
        text.find(text[position : position + length + 1], 0, position + length) != -1
    ):
        length += 1
    return length


def _sequence_length(text: str, position: int) -> int:
    """Length of the run or sequence (steps of -1, 0 or +1) starting at ``position``."""
    if position + 1 >= len(text):
        return 1
    step = ord(text[position + 1]) - ord(text[position])
    if step not in (-1, 0, 1):
        return 1
    end = position + 1
    while end + 1 < len(text) and ord(text[end + 1]) - ord(text[end]) == step:
        end += 1
    return end - position + 1


def load_or_create_secret_key(instance_path: Path) -> str:
    """Development secret: created once in ``instance/`` (mode 0600), shared by all workers."""
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = instance_path / SECRET_KEY_FILE
    try:
        # O_EXCL: when several workers start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret_key(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return _read_secret_key(path)


def _read_secret_key(path: Path) -> str:
    """Read the key file, waiting briefly if another worker is still writing it."""
    for _ in range(50):
        key = path.read_text().strip()
        if len(key) >= SECRET_KEY_MIN_BYTES:
            return key
        time.sleep(0.01)
    raise ConfigError([f"SECRET_KEY: {path} is empty or too short; delete it to regenerate."])


def settings_table() -> str:
    """The README's settings table, in Markdown."""
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default else "(empty)"
        rows.append(f"| `{setting.name}` | {default} | {setting.help} |")
    return "\n".join(rows)


def env_example() -> str:
    """The text of ``.env.example``: every setting, commented, with its default."""
    lines = [
        "# Copy to .env and uncomment what you change; the environment wins over this file.",
        "# Generated from api/settings.py by `make docs`; edit the help text there.",
    ]
    for setting in SETTINGS:
        lines += ["", f"# {setting.help}", f"# {setting.name}={setting.default or ''}"]
    return "\n".join(lines) + "\n"
