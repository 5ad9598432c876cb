"""Settings, read from the environment.

With DEBUG on, missing secrets get development values and the embedded
backends (SQLite, a broker in files) are used unless DATABASE_URL and
CELERY_BROKER_URL say otherwise. With DEBUG off, a missing secret stops
start-up with a message that names it.
"""

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

# Lets typed generics such as admin.ModelAdmin[Model] work at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HUBSYNC_VAR_DIR", BASE_DIR / "var"))


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_flag("DEBUG")

# Development values: obviously fake, accepted only with DEBUG on.
_DEV_SECRETS = {
    "DJANGO_SECRET_KEY": "dev-only-secret-key-not-for-production",
    "HUBSYNC_ENCRYPTION_KEYS": "ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE=",
}


def env_secret(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if DEBUG:
        return _DEV_SECRETS[name]
    raise ImproperlyConfigured(
        f"The environment variable {name} is required when DEBUG is off."
    )


SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
HUBSYNC_ENCRYPTION_KEYS = [
    key.strip()
    for key in env_secret("HUBSYNC_ENCRYPTION_KEYS").split(",")
    if key.strip()
]
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get(
        "ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else ""
    ).split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "hub",
    "sources",
    "subscriptions",
    "sync",
    "tokens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hubsync.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "hubsync.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'hubsync.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for a lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# The largest request body the API accepts (base, extended and extra are
# 64 KB each, plus the rest of a customer).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(
    os.environ.get("HUBSYNC_MAX_BODY_BYTES", str(256 * 1024))
)

# Send.
SEND_WSDL_URL = os.environ.get(
    "SEND_WSDL_URL", "https://soap.contactlab.it/soap/services?wsdl"
)
SEND_TIMEOUT_SECONDS = float(os.environ.get("SEND_TIMEOUT_SECONDS", "10"))
SEND_POLL_SECONDS = float(os.environ.get("SEND_POLL_SECONDS", "5"))
# Send tokens live this long unused; they are kept alive past this fraction.
SEND_TOKEN_TTL_SECONDS = float(os.environ.get("SEND_TOKEN_TTL_SECONDS", "600"))
SEND_TOKEN_KEEPALIVE_FRACTION = 0.5
SEND_GATEWAY = os.environ.get("SEND_GATEWAY", "sources.send.client.SoapSendGateway")

# The cache holds the API's throttle counters: shared by every web process
# when CACHE_URL names a Redis server, per process otherwise.
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery. The embedded default is a broker kept in files, which needs no
# server; CELERY_BROKER_URL switches to Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# REST API (the api settings block).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tokens.authentication.BearerTokenAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hubsync.api.access.HasToken"],
    "DEFAULT_PARSER_CLASSES": [
        "hubsync.api.parsers.JSONBodyParser",
        "hubsync.api.parsers.MergePatchParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["hubsync.api.throttles.TokenRateThrottle"],
    # Per token, and per client address for requests without one.
    "DEFAULT_THROTTLE_RATES": {
        "token": os.environ.get("HUBSYNC_API_TOKEN_RATE", "1200/min"),
        "anonymous": os.environ.get("HUBSYNC_API_ANONYMOUS_RATE", "120/min"),
    },
    "EXCEPTION_HANDLER": "hubsync.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hubsync API",
    "DESCRIPTION": (
        "Contacthub-compatible customers API and the configuration of nodes, "
        "subscription systems and sources. Authenticate with "
        "`Authorization: Bearer <token>`. Lists are paged from page 0, at most "
        "100 elements a page. Every error is `{message, errors[], data, logref}`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_NO_READ_ONLY_REQUIRED": True,
}

# Sync (the sync settings block).
# Remote calls run on the "send" queue, the rest on the default one; a
# worker started without -Q consumes both. Tasks are acknowledged after
# they run and given back when their worker dies, one at a time per
# process, so a killed worker loses nothing.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("send"))
CELERY_TASK_ROUTES = {
    f"sync.tasks.{name}": {"queue": "send"}
    for name in ("outbox_relay_task", "source_poll_task", "source_reconcile_task")
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
SYNC_RELAY_SECONDS = float(os.environ.get("SYNC_RELAY_SECONDS", "60"))
SYNC_CLAIM_SECONDS = float(os.environ.get("SYNC_CLAIM_SECONDS", "300"))
# How long an outbox row waits for the initial chunk that owes its customer.
SYNC_CHUNK_WAIT_SECONDS = 2.0
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Longer than the longest task, so an unacknowledged task is not handed
    # to a second worker while the first still runs it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(SYNC_CLAIM_SECONDS * 4 + SYNC_RELAY_SECONDS)
    }
SYNC_RECONCILE_MINUTES = float(os.environ.get("SYNC_RECONCILE_MINUTES", "15"))
SYNC_SWEEP_SECONDS = float(os.environ.get("SYNC_SWEEP_SECONDS", "30"))
SYNC_HISTORY_DAYS = int(os.environ.get("SYNC_HISTORY_DAYS", "30"))
SYNC_ACCOUNT_CONCURRENCY = int(os.environ.get("SYNC_ACCOUNT_CONCURRENCY", "4"))
SYNC_SLOT_LEASE_SECONDS = SYNC_CLAIM_SECONDS
SYNC_RELAY_PARALLELISM = int(os.environ.get("SYNC_RELAY_PARALLELISM", "3"))
SYNC_CALL_ATTEMPTS = int(os.environ.get("SYNC_CALL_ATTEMPTS", "4"))
SYNC_CALL_BACKOFF_SECONDS = float(os.environ.get("SYNC_CALL_BACKOFF_SECONDS", "0.2"))
SYNC_BACKOFF_MAX_SECONDS = float(os.environ.get("SYNC_BACKOFF_MAX_SECONDS", "300"))
CELERY_BEAT_SCHEDULE = {
    "sync-poll": {
        "task": "sync.tasks.poll_all_task",
        "schedule": SEND_POLL_SECONDS,
        "options": {"expires": SEND_POLL_SECONDS * 2},
    },
    "sync-outbox-sweep": {
        "task": "sync.tasks.outbox_sweep_task",
        "schedule": SYNC_SWEEP_SECONDS,
    },
    "sync-reconcile": {
        "task": "sync.tasks.reconcile_all_task",
        "schedule": SYNC_RECONCILE_MINUTES * 60,
    },
    "sync-prune": {"task": "sync.tasks.history_prune_task", "schedule": 6 * 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # zeep logs whole envelopes at DEBUG, and envelopes carry keys.
        "zeep": {"level": "WARNING"},
        "zeep.transports": {"level": "WARNING"},
    },
}
