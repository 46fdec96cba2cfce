"""Tranche settings: one module, every value read from the environment.

Each variable is documented in the README. Readers live in `tranche.core.env` and raise a
clear error on a bad value.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from tranche.core.env import (
    default_var_dir,
    env_bool,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_url,
    parse_database_url,
    postgres_connection,
    private_dir,
    sqlite_database,
    storage_settings,
)
from tranche.core.logging import log_format, logging_config

# Everything this process writes (database, mail files, collected static files, the
# generated secret) is for its own user only; the folders below are made 0700 as well.
os.umask(0o077)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = private_dir(default_var_dir())

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. Generate one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"

BASE_URL = env_url("BASE_URL", "http://127.0.0.1:8000")
_base = urlsplit(BASE_URL)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [_base.hostname or "127.0.0.1", "127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]

TIME_ZONE = env_str("TIME_ZONE") or "UTC"
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"

DEFAULT_CURRENCY = (env_str("DEFAULT_CURRENCY") or "USD").upper()
BUSINESS_NAME = env_str("BUSINESS_NAME") or "Tranche"
# Defaults for the business settings an admin can change on the settings page.
DEFAULT_PAYMENT_TERMS_DAYS = env_int("DEFAULT_PAYMENT_TERMS_DAYS", 14, minimum=0)
BANK_DETAILS = env_str("BANK_DETAILS") or ""

# --- HTTPS: on in production. Off by default so `make run` works on plain http://127.0.0.1.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    # Only behind a proxy that overwrites this header; otherwise a client could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Database
_database_url = env_str("DATABASE_URL")
DATABASES = {
    "default": (
        parse_database_url(_database_url, base_dir=BASE_DIR)
        if _database_url
        else sqlite_database(VAR_DIR / "tranche.sqlite3")
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Production connection settings, each an environment variable (docs/scaling.md).
    DATABASES["default"] = postgres_connection(
        DATABASES["default"],
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        statement_timeout_ms=env_int("DB_STATEMENT_TIMEOUT_MS", 0, minimum=0),
        pgbouncer=env_bool("DB_PGBOUNCER", False),
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "ninja",
    "tranche.core",
    "tranche.accounts",
    "tranche.sales",
    "tranche.projects",
    "tranche.billing",
    "tranche.notifications",
    "tranche.web",
    # After our apps, so tranche/core/templates/admin/ can adjust the admin's templates.
    "django.contrib.admin",
    "django_tasks",
    "django_tasks_db",
    # RQ's worker command (`tranche worker` with TASKS_BACKEND=rq). Installed whichever
    # queue is used, so its migrations (no tables) are applied either way and moving the
    # queue to Redis is a change of settings alone.
    "django_rq",
]
# django-rq's admin pages can empty queues and requeue jobs; the admin stays read-only.
RQ_SHOW_ADMIN_LINK = False

MIDDLEWARE = [
    # First of all: every line logged while a request runs carries its id.
    "tranche.core.requestid.RequestIdMiddleware",
    # Sees the final status of every request, whichever layer answered.
    "tranche.core.metrics.HttpMetricsMiddleware",
    # Outermost, so it sees every answer under /api/, whichever layer produced it.
    "tranche.core.middleware.ApiJsonErrorsMiddleware",
    "tranche.core.middleware.SecurityHeadersMiddleware",
    # A database that cannot be reached is a 503, not a server error.
    "tranche.core.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything looks up a session, a user or a row with the request's values.
    "tranche.core.middleware.RejectNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check: an attempt refused for its CSRF token still counts.
    "tranche.core.ratelimit.RateLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # The next four come after messages, which say why a session ended. Which two-factor
    # device (if any) verified this session: `request.user.is_verified()`.
    "django_otp.middleware.OTPMiddleware",
    # The address and browser of the request, for the security log's lines.
    "tranche.accounts.security.SecurityContextMiddleware",
    # A session ends after SESSION_IDLE_MINUTES without a request, and 12 hours after
    # signing in, whatever happens.
    "tranche.accounts.sessions.SessionLimitsMiddleware",
    # An unverified session of a two-factor user ends; an admin who must use two-factor
    # and has not set it up may only set it up.
    "tranche.accounts.two_factor.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into a response for the login page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tranche.urls"
CSRF_FAILURE_VIEW = "tranche.core.http.csrf_failure"
WSGI_APPLICATION = "tranche.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

STATIC_URL = "/static/"
# Uploaded files (the business's logo): written by the app, served by its own view, kept
# in MEDIA_ROOT (shared by every web machine: an NFS mount) or an S3-compatible bucket.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "/media/"
STORAGES = storage_settings(
    (env_str("STORAGE_BACKEND") or "filesystem").lower(),
    s3={
        "bucket_name": env_str("S3_BUCKET"),
        "endpoint_url": env_str("S3_ENDPOINT_URL"),
        "region_name": env_str("S3_REGION"),
        "access_key": env_str("S3_ACCESS_KEY_ID"),
        "secret_key": env_str("S3_SECRET_ACCESS_KEY"),
        "location": env_str("S3_PREFIX"),
    },
)
STATIC_ROOT = VAR_DIR / "static"
# `tranche run` collects static files here; whitenoise warns on every start until it exists.
with contextlib.suppress(OSError):
    private_dir(STATIC_ROOT)

# --- Accounts
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Sessions end after this long without a request, and SESSION_ABSOLUTE_HOURS after signing
# in whatever happens; the cookie itself lives no longer than that.
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_ABSOLUTE_HOURS = 12
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_HOURS * 3600


def _totp_issuer(device: object) -> str:
    """The authenticator app shows the business's name (as set in the settings) beside
    the code."""
    from tranche.accounts.business import business_profile

    return business_profile().name


OTP_TOTP_ISSUER = _totp_issuer
# How long a password checked at sign-in waits for its two-factor code.
TWO_FACTOR_PENDING_MINUTES = 5
# How long the one-time links to set a password work: an invitation, a forgotten password.
INVITATION_DAYS = env_int("INVITATION_DAYS", 7, minimum=1)
PASSWORD_RESET_TIMEOUT = 3600 * env_int("PASSWORD_RESET_HOURS", 2, minimum=1)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lock a (login, address) pair after repeated failures, so an attacker guessing one
# account's password is stopped without locking its owner out from everywhere.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "tranche.accounts.auth.axes_username"
AXES_LOCKOUT_CALLABLE = "tranche.web.views.auth.lockout"
AXES_VERBOSE = False
# How many reverse proxies in front of us append to X-Forwarded-For. 0 (the default)
# believes no header: the client is the socket's peer, since anyone can send the header.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "tranche.core.http.client_ip"

# --- Rate limits on what anyone may call without signing in (tranche/core/ratelimit.py):
# COUNT/PERIOD per client address (as above) and per target, each RATE_LIMIT_<NAME>.
RATE_LIMITS = {
    name: env_rate(f"RATE_LIMIT_{name.upper()}", default)
    for name, default in {
        "sign_in_address": "30/10m",
        "sign_in_account": "10/10m",
        "password_reset_address": "10/1h",
        "password_reset_email": "3/1h",
        "password_link_address": "20/10m",
        "password_link_person": "10/10m",
        "pay_address": "20/10m",
        "pay_link": "10/10m",
        "pay_page_address": "120/10m",
    }.items()
}
# The counters must be shared by every worker process, so they live in the database's
# cache table (`tranche migrate` creates it). Its default of 300 entries would cull live
# counters; expired ones are removed as it goes.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "tranche_cache",
        "OPTIONS": {"MAX_ENTRIES": 200_000, "CULL_FREQUENCY": 4},
    },
    # Rendered PDFs, keyed by a digest of the HTML they were made from (billing/pdf.py): a
    # document whose content changed has a new key, so nothing is ever invalidated by hand.
    # In the database, so every web machine shares it.
    "documents": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "tranche_document_cache",
        "TIMEOUT": 30 * 24 * 3600,
        "OPTIONS": {"MAX_ENTRIES": 5_000, "CULL_FREQUENCY": 4},
    },
}
RATE_LIMIT_CACHE = "default"

# LOG_FORMAT=json: one JSON object per line (for journald or a log shipper); plain text
# otherwise. Either way every line carries its request id and no credential.
LOG_FORMAT = log_format()
LOGGING = logging_config(fmt=LOG_FORMAT, level=env_str("LOG_LEVEL") or "INFO")

# --- Billing
# Python format string; {year} and {seq} are available. Numbers restart every year.
INVOICE_NUMBER_FORMAT = env_str("INVOICE_NUMBER_FORMAT") or "INV-{year}-{seq:05d}"
try:
    INVOICE_NUMBER_FORMAT.format(year=2026, seq=1)
except (KeyError, IndexError, ValueError) as exc:
    raise ImproperlyConfigured(
        f"INVOICE_NUMBER_FORMAT {INVOICE_NUMBER_FORMAT!r} is not a valid format: {exc}. "
        "Use {year} and {seq}, e.g. INV-{year}-{seq:05d}."
    ) from None

# Reminder steps in days relative to the due date: 3 days before, on the day, 7 and 14 after.
try:
    REMINDER_DAYS = sorted({int(d) for d in env_list("REMINDER_DAYS", ["-3", "0", "7", "14"])})
except ValueError:
    raise ImproperlyConfigured(
        "REMINDER_DAYS must be whole numbers of days separated by commas, e.g. -3,0,7,14."
    ) from None
TICK_MINUTES = env_int("TICK_MINUTES", 15, minimum=1)
# Task queue processes `tranche worker` runs side by side (its --processes default).
WORKER_PROCESSES = env_int("WORKER_PROCESSES", 1, minimum=1)

# --- Monitoring (docs/deploy.md, "Monitoring")
# /api/ready fails when the worker's heartbeat is older than this; 0 leaves it out.
READY_WORKER_MINUTES = env_int("READY_WORKER_MINUTES", 5, minimum=0)
# /metrics answers a request with `Authorization: Bearer <METRICS_TOKEN>`; without a
# token configured it answers 404 to everyone.
METRICS_TOKEN = env_str("METRICS_TOKEN") or ""

# --- Data retention (docs/operations.md), applied by the periodic pass a batch at a time.
# After this many days a processed Stripe event keeps its id, type and outcome (a
# redelivery is still recognised) but not its payload, and a sent email keeps its
# recipient, subject, kind and time but not its bodies. 0 keeps them for ever. Invoices,
# credit notes, payments and their audit trail are never purged.
RETENTION_STRIPE_EVENT_DAYS = env_int("RETENTION_STRIPE_EVENT_DAYS", 90, minimum=0)
RETENTION_EMAIL_BODY_DAYS = env_int("RETENTION_EMAIL_BODY_DAYS", 365, minimum=0)

# --- Payments: Stripe when a secret key is set, else the built-in sandbox.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY") or ""
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY") or ""
STRIPE_API_BASE = env_str("STRIPE_API_BASE") or ""
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 15, minimum=1)
# Comma-separated: while rotating, configure the old and the new secret together.
STRIPE_WEBHOOK_SECRETS = env_list("STRIPE_WEBHOOK_SECRET", [])
# The sandbox moves no money; outside DEBUG it must be asked for explicitly.
PAYMENTS_SANDBOX = env_bool("PAYMENTS_SANDBOX", False)

# --- Email: SMTP when EMAIL_HOST is set, else files under var/mail/.
EMAIL_HOST = env_str("EMAIL_HOST") or ""
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = private_dir(VAR_DIR / "mail")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or f"{BUSINESS_NAME} <billing@localhost>"

# --- Background work: the database queue, Redis with RQ, or in-process after commit.
TASKS_IMMEDIATE = env_bool("TASKS_IMMEDIATE", False)
TASKS_BACKEND = "immediate" if TASKS_IMMEDIATE else (env_str("TASKS_BACKEND") or "database")
TASKS_BACKEND = TASKS_BACKEND.lower()
if TASKS_BACKEND == "rq":
    REDIS_URL = env_str("REDIS_URL") or ""
    if not REDIS_URL.lower().startswith(("redis://", "rediss://", "unix://")):
        # Not the value itself: a URL may carry a password.
        raise ImproperlyConfigured(
            "TASKS_BACKEND=rq needs REDIS_URL, a redis://, rediss:// or unix:// URL, e.g. "
            "redis://127.0.0.1:6379/0."
        )
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    # A task runs for seconds; ten minutes is a hung SMTP server or provider, not work.
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600}}
elif TASKS_BACKEND in ("database", "immediate"):
    TASKS = {
        "default": {
            "BACKEND": (
                "django_tasks.backends.immediate.ImmediateBackend"
                if TASKS_BACKEND == "immediate"
                else "django_tasks_db.DatabaseBackend"
            )
        }
    }
else:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be database or rq; got {TASKS_BACKEND!r}.")
