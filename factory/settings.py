"""Settings for Cognitive Factory, read from the environment.

Embedded default: SQLite under var/, in-memory channel layer, DEBUG on.
Production: DATABASE_URL=postgres://..., REDIS_URL=redis://..., DEBUG=0, SECRET_KEY, ALLOWED_HOSTS.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FACTORY_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


# Off unless asked for: a production set-up that forgets DEBUG must not serve tracebacks with a
# development key. `make run` (the embedded demo) and the test suite (factory/test_settings.py) turn it on.
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0 (50+ random characters).")
    SECRET_KEY = "django-insecure-embedded-development-key-change-me-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "workflows",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so that static files get the policy too.
    "factory.middleware.ContentSecurityPolicyMiddleware",
    "factory.middleware.RefuseNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (it reads nothing from them, but set_language's cookie must be seen) and before
    # CommonMiddleware, as Django asks: it picks the language from the cookie, then Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "factory.urls"
ASGI_APPLICATION = "factory.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workflows.context_processors.roles",
            ],
        },
    },
]

# Database: PostgreSQL in production and CI (DATABASE_URL), SQLite file otherwise.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Workers keep their connection (CONN_MAX_AGE 60 s). The ASGI web process must not: Django runs each
    # request in a thread of its own there, so a persistent connection outlives its thread until garbage
    # collection — 20 requests/s held 90+ of PostgreSQL's 100 connections (tests/load). factory/asgi.py
    # sets DB_CONN_MAX_AGE=0 before Django starts.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
                                                  conn_health_checks=True)}
    if env_str("PG_TEST_DB"):  # a test database of one's own when several people test on one server
        DATABASES["default"]["TEST"] = {"NAME": env_str("PG_TEST_DB")}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH") or VAR_DIR / "factory.sqlite3",
            # A file, not :memory:, so that worker subprocesses started by the tests see the test
            # database; one file per test process so concurrent test runs do not collide.
            "TEST": {"NAME": env_str("SQLITE_TEST_PATH") or str(VAR_DIR / f"test-{os.getpid()}.sqlite3")},
            "OPTIONS": {
                # WAL lets the web process read while the worker writes; IMMEDIATE takes the
                # write lock at BEGIN so two writers queue instead of failing mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channel layer: Redis when configured (production, N processes); in-process otherwise.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_PREFIX", "factory")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Live sockets one user may hold open in one web process (a poller and a share of every broadcast each).
LIVE_MAX_SOCKETS_PER_USER = env_int("LIVE_MAX_SOCKETS_PER_USER", 64)

# Cache: login throttling counts failures here, so in production every web process must share it.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_PREFIX", "factory"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background work: Django's Tasks API, with the queue in the same database as the workflows.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "runs", "governance"],
    }
}

# Keyed checkpoints of the audit chain (models/audit.py): how often, the key (else derived from
# SECRET_KEY) and an optional file, on another disk or a mount shipped off the box, that gets a copy.
AUDIT_CHECKPOINT_SECONDS = env_int("AUDIT_CHECKPOINT_SECONDS", 3600)
AUDIT_CHECKPOINT_KEY = env_str("AUDIT_CHECKPOINT_KEY")
AUDIT_CHECKPOINT_FILE = env_str("AUDIT_CHECKPOINT_FILE")

# Governance pages read bounded windows: live accuracy from the labels of the last ACCURACY_WINDOW_DAYS,
# drift over the model steps of runs started in the last DRIFT_ACTIVE_DAYS.
ACCURACY_WINDOW_DAYS = env_int("ACCURACY_WINDOW_DAYS", 28)
DRIFT_ACTIVE_DAYS = env_int("DRIFT_ACTIVE_DAYS", 30)

# The executor (workflows/engine): shard = contiguous items per Django task; micro-batch = items per
# node call. A running shard whose heartbeat is older than ENGINE_STALE_SECONDS is re-enqueued by
# the monitor that runs inside every `run_worker` loop every ENGINE_MONITOR_SECONDS.
ENGINE_SHARD_SIZE = env_int("ENGINE_SHARD_SIZE", 256)
ENGINE_BATCH_SIZE = env_int("ENGINE_BATCH_SIZE", 32)
ENGINE_STALE_SECONDS = env_int("ENGINE_STALE_SECONDS", 60)
# A thread of the worker renews a running shard's heartbeat this often, however long one batch takes.
ENGINE_HEARTBEAT_SECONDS = float(env_str("ENGINE_HEARTBEAT_SECONDS", str(ENGINE_STALE_SECONDS / 4)))
# A shard found stale this many times (each worker running it died or hung) is given up: its pending
# items become dead letters with the reason, instead of taking down one worker after another.
ENGINE_MAX_SHARD_ATTEMPTS = env_int("ENGINE_MAX_SHARD_ATTEMPTS", 5)
# On PostgreSQL a micro-batch commits in a thread of its own while the next one is computed
# (engine/committer.py); 0 commits each batch before computing the next.
ENGINE_OVERLAP_COMMITS = env_bool("ENGINE_OVERLAP_COMMITS", True)
# PostgreSQL ends a worker's transaction left idle this long (0: never). A worker never waits inside
# one (model calls happen before a batch's transaction opens), so an idle one means its worker was cut
# off between two statements: without this, the row locks it holds (a shard, a task) would stop every
# other worker from taking that work over until the network came back.
WORKER_IDLE_TRANSACTION_SECONDS = env_int("WORKER_IDLE_TRANSACTION_SECONDS", 60)
# A training, optimisation or evidence job whose worker went silent is taken over by another worker,
# and failed with the reason after this many silent attempts (they are long and costly to repeat).
GOVERNANCE_MAX_ATTEMPTS = env_int("GOVERNANCE_MAX_ATTEMPTS", 2)
ENGINE_MONITOR_SECONDS = float(env_str("ENGINE_MONITOR_SECONDS", "5"))
# An idle worker is woken as soon as a task is enqueued (engine/wakeup.py) and polls the queue only
# this often besides, so that a lost wake-up delays a task by at most this much.
ENGINE_WORKER_POLL_SECONDS = float(env_str("ENGINE_WORKER_POLL_SECONDS", "5"))
ENGINE_INTAKE_FLUSH_SECONDS = float(env_str("ENGINE_INTAKE_FLUSH_SECONDS", "2"))
ENGINE_RETRY_BACKOFF_SECONDS = float(env_str("ENGINE_RETRY_BACKOFF_SECONDS", "0.5"))
# PostgreSQL: the executor's micro-batch commits do not wait for the WAL flush (see executor.commit);
# set to 1 to make them wait (slower, and a database crash then costs no recomputation).
ENGINE_SYNCHRONOUS_COMMIT = env_bool("ENGINE_SYNCHRONOUS_COMMIT", False)
ENGINE_UPLOAD_MAX_BYTES = env_int("ENGINE_UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
ENGINE_UPLOAD_MAX_ROWS = env_int("ENGINE_UPLOAD_MAX_ROWS", 1_000_000)
# Documents (PDF, scans, images; engine/documents.py): the pages one upload may bring, all its files
# together, and the pixels of one image or rendered page (A4 at 600 dpi is 35 million).
DOCUMENT_MAX_PAGES = env_int("DOCUMENT_MAX_PAGES", 2000)
DOCUMENT_MAX_PIXELS = env_int("DOCUMENT_MAX_PIXELS", 40_000_000)
ENGINE_INTAKE_MAX_ITEMS = env_int("ENGINE_INTAKE_MAX_ITEMS", 1000)
# Inbound webhooks (/hooks/<slug>/, workflows/inbound/webhooks.py): the largest body taken, requests per
# minute per client address, and failed authentications (unknown address, bad signature) per address
# within WEBHOOK_FAILURE_WINDOW seconds before that address is refused until the window ends.
WEBHOOK_MAX_BYTES = env_int("WEBHOOK_MAX_BYTES", 5 * 1024 * 1024)
WEBHOOK_RATE_LIMIT = env_int("WEBHOOK_RATE_LIMIT", 1200)
WEBHOOK_FAILURE_LIMIT = env_int("WEBHOOK_FAILURE_LIMIT", 30)
WEBHOOK_FAILURE_WINDOW = env_int("WEBHOOK_FAILURE_WINDOW", 15 * 60)
# Mailboxes polled by the workers (workflows/inbound/mailboxes.py): the largest message taken, its
# attachments (how many, how large each), messages per poll, the timeout of every IMAP socket operation,
# and a PEM file of extra certificate authorities to trust (a firm's own mail server's CA).
MAILBOX_MAX_MESSAGE_BYTES = env_int("MAILBOX_MAX_MESSAGE_BYTES", 25 * 1024 * 1024)
MAILBOX_MAX_ATTACHMENTS = env_int("MAILBOX_MAX_ATTACHMENTS", 20)
MAILBOX_MAX_ATTACHMENT_BYTES = env_int("MAILBOX_MAX_ATTACHMENT_BYTES", 15 * 1024 * 1024)
MAILBOX_MESSAGES_PER_POLL = env_int("MAILBOX_MESSAGES_PER_POLL", 50)
MAILBOX_TIMEOUT_SECONDS = float(env_str("MAILBOX_TIMEOUT_SECONDS", "30"))
MAILBOX_CA_FILE = env_str("MAILBOX_CA_FILE")
# Modules that register node handlers (workflows.engine.nodes.base.register) beside the built-in flow nodes.
ENGINE_HANDLER_MODULES = env_list("ENGINE_HANDLER_MODULES",
                                  ["workflows.engine.nodes.models", "workflows.engine.nodes.llm"])
# A worker keeps the models its runs load; past this many MB the least recently used are dropped
# (engine/nodes/loader.py), so one worker serving many lines does not hold every model it ever ran.
WORKER_MODEL_MEMORY_MB = env_int("WORKER_MODEL_MEMORY_MB", 1024)
# Per registered model, the tokens it reads instead of the length its card gives (runtimes/build.py):
# MODEL_MAX_TOKENS="minilm=256,e5-multilingual=512".
MODEL_MAX_TOKENS: dict[str, int] = {}
for _pair in env_list("MODEL_MAX_TOKENS", []):
    _name, _, _tokens = _pair.partition("=")
    if not _name.strip() or not _tokens.strip().isdigit() or int(_tokens) < 8:
        raise ImproperlyConfigured(f"MODEL_MAX_TOKENS must read model=tokens,… with at least 8 tokens, not {_pair!r}")
    MODEL_MAX_TOKENS[_name.strip()] = int(_tokens)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "workflow-list"
LOGOUT_REDIRECT_URL = "login"

# English for browsers that ask for neither language; Italian for those that ask for it, and for
# anyone who picks it in the top bar (a cookie kept for a year, so the choice is remembered).
LANGUAGE_CODE = "en"
LANGUAGES = [("it", "Italiano"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = env_str("TIME_ZONE", "Europe/Rome")
USE_I18N = True
# No USE_THOUSAND_SEPARATOR: it would group every integer a template prints, ids in URLs included
# ("/runs/1.234/"). Money and counts are grouped by the formatting filters instead.
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env_str(
            "STATICFILES_STORAGE",
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"
ARTIFACTS_DIR = Path(env_str("ARTIFACTS_DIR", str(VAR_DIR / "artifacts")))
# Each machine keeps local copies of the files it reads from the artifact store (models it ran, originals
# it served); past this many MB the least recently used go (fetched again when needed). 0: no cap.
ARTIFACT_CACHE_MB = env_int("ARTIFACT_CACHE_MB", 4096)

# A graph is a design, not a data set: keep request bodies bounded.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
# Uploaded files: refused by their endpoint's cap (ENGINE_UPLOAD_MAX_BYTES, MODEL_IMPORT_MAX_BYTES…)
# from Content-Length before they are read (workflows/uploads.py); above 2.5 MB they spool to disk.
MODEL_IMPORT_MAX_BYTES = env_int("MODEL_IMPORT_MAX_BYTES", 512 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_HANDLERS = [
    "workflows.uploads.UploadCapHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
GRAPH_MAX_BYTES = env_int("GRAPH_MAX_BYTES", 1024 * 1024)
GRAPH_MAX_NODES = env_int("GRAPH_MAX_NODES", 500)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "workflows.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "workflows.api.schema.AutoSchema",  # documents the error responses too
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "workflows.api.errors.exception_handler",
    # JSON bodies bounded in size and nesting depth (workflows/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["workflows.api.parsers.BoundedJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cognitive Factory API",
    "DESCRIPTION": "Design, version and run production lines of small models.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The API's description is public; every endpoint it describes still checks authentication and role.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two choice sets are both called `decision`: a publication request's state and what a person decides.
    "ENUM_NAME_OVERRIDES": {
        "PublicationStateEnum": "workflows.models.graph.PublishRequest.DECISIONS",
        "PublicationDecisionEnum": ["approve", "reject", "cancel"],
    },
}

# Production hardening: on by default whenever DEBUG is off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy on every response (factory/middleware.py), DEBUG or not. No inline script or
# style anywhere: scripts are static files that read their data from data-* attributes and json_script
# blocks, and styles are classes in static CSS. drawflow and uPlot position things through the CSSOM
# (element.style.x = …), which style-src does not govern, and htmx is told neither to inject its
# indicator <style> nor to copy style attributes when it settles a swap (the htmx-config meta tag in
# base.html; setAttribute("style", …) is refused, even empty). The middleware adds ws(s)://<host> to connect-src
# for the live sockets. Only the API docs pages relax it (factory/urls.py); with DEBUG on, Django's
# technical 404/500 pages (inline style and script) go without it.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# Login throttling (workflows/login_throttle.py), for the login page and the API token endpoint: after
# LOGIN_FAILURE_LIMIT failures for one username from one address within LOGIN_FAILURE_WINDOW seconds,
# or LOGIN_ADDRESS_FAILURE_LIMIT failures from one address for any usernames, logins from there answer
# 429 without checking the password until the window ends. Behind a proxy, REMOTE_ADDR is the proxy's:
# name the header it sets to the client's address (e.g. HTTP_X_REAL_IP) in CLIENT_IP_HEADER.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 50)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 15 * 60)
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Notifications (workflows/notifications): the inbox always; e-mail only when EMAIL_HOST names an SMTP
# server (`make run` needs none). E-mails are digests: one per person at most every NOTIFY_DIGEST_MINUTES.
# Periodic checks (review backlog, drift, weekly packs to sign) run once every NOTIFY_CHECK_MINUTES; the
# review backlog alarms above NOTIFY_REVIEW_BACKLOG open escalations or when the oldest is older than
# NOTIFY_REVIEW_SLA_HOURS (0 turns either off). NOTIFY_SITE_URL (https://factory.example.it) makes the
# links in e-mails absolute.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "cognitive-factory@localhost")
NOTIFY_DIGEST_MINUTES = env_int("NOTIFY_DIGEST_MINUTES", 15)
NOTIFY_CHECK_MINUTES = env_int("NOTIFY_CHECK_MINUTES", 60)
NOTIFY_REVIEW_BACKLOG = env_int("NOTIFY_REVIEW_BACKLOG", 50)
NOTIFY_REVIEW_SLA_HOURS = env_int("NOTIFY_REVIEW_SLA_HOURS", 24)
NOTIFY_SITE_URL = env_str("NOTIFY_SITE_URL")
