"""Settings shared by every environment; each value comes from the environment with a development default."""
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dj_database_url
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Development-only default, refused by brokerx.settings.prod.
DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://localhost:8000,http://127.0.0.1:8000")

INSTALLED_APPS = [
    # The admin's default site is the MFA-guarded one, so every `@admin.register` lands behind MFA.
    "accounts.admin_config.OTPAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_email",
    "brokerx",
    "accounts",
    "portfolios",
    "orders",
    "matching",
    "notifications",
    "outbox",
    "watchlists",
    "alpaca_compat",
    "simulator",
    "web",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "brokerx.observability.RequestIdMiddleware",
    "brokerx.error_responses.ErrorResponseMiddleware",  # errors in each surface's shape; 503 for dependency faults
    "brokerx.middleware.InternalProbesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "brokerx.ratelimit.RateLimitHeadersMiddleware",
    "orders.api.middleware.OrderEntryMiddleware",  # token/API-key order entry skips the browser middleware below
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "brokerx.urls"
WSGI_APPLICATION = "brokerx.wsgi.application"
ASGI_APPLICATION = "brokerx.asgi.application"

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

# --- Postgres only -------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brokerx")
# A psycopg connection pool per process: under ASGI each request runs in its own thread, so Django's
# per-thread persistent connections would pile up; the pool bounds them and reuses warm connections.
DB_POOL_MAX = int(env("DB_POOL_MAX", "8"))
# Django's PostgreSQL backend whose pooled connections are checked before use without a round trip (a socket poll),
# so one killed by Postgres (terminated, restarted) is replaced instead of failing a request (ADR 009).
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, engine="brokerx.backends.postgresql", conn_max_age=0)
}
if DB_POOL_MAX > 0:
    # timeout: how long a request waits for a connection (Postgres down: then 503 + Retry-After).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(env("DB_POOL_MIN", "2")), "max_size": DB_POOL_MAX,
        "timeout": float(env("DB_POOL_TIMEOUT", "5")),
    }
else:
    # Without the pool (e.g. behind PgBouncer): persistent connections per thread, checked before reuse.
    DATABASES["default"]["CONN_MAX_AGE"] = int(env("CONN_MAX_AGE", "60"))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise RuntimeError("BrokerX supports PostgreSQL only; DATABASE_URL must be a postgres:// URL")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker --------------------------------------------------
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
# Seconds a Redis connect or reply may take before the call counts as failed; that many consecutive failures open
# the circuit, which lets one probe through every REDIS_CIRCUIT_RESET_SECONDS (brokerx/redis_circuit.py, ADR 009).
REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "0.5"))
REDIS_CIRCUIT_FAILURES = int(env("REDIS_CIRCUIT_FAILURES", "3"))
REDIS_CIRCUIT_RESET_SECONDS = float(env("REDIS_CIRCUIT_RESET_SECONDS", "2"))
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "bx"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # Short timeouts and a circuit breaker (brokerx/redis_circuit.py): a dead or frozen Redis costs a
            # request microseconds, not a timeout each; every use of Redis has its failure mode (ADR 009).
            "CONNECTION_POOL_CLASS": "brokerx.redis_circuit.GuardedConnectionPool",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
        },
    }
}
# Redis pub/sub (channels_redis.pubsub): each web process subscribes once per group that has local consumers and
# hands every message to them, so a market update to 1,000 subscribers is one PUBLISH, and a push arrives as soon
# as Redis relays it (no polling). Delivery is at most once; the database is the record (ADR 005). Pub/sub ignores
# the database number, so the prefix carries it.
_redis_url = urlsplit(REDIS_URL)
_redis_db = (parse_qs(_redis_url.query).get("db") or [_redis_url.path.strip("/") if _redis_url.hostname else ""])[0]
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{env('CHANNELS_PREFIX', 'bx-asgi')}-{_redis_db or '0'}-"},
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "BrokerX <no-reply@brokerx.example>")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(BASE_DIR / ".data" / "mail"))
# Fill and cancel confirmation e-mails: one per trader per window of this many seconds (0: one per matching batch,
# as soon as it is drained). See notifications.handlers.email_window_end.
NOTIFICATIONS_EMAIL_WINDOW_SECONDS = int(env("NOTIFICATIONS_EMAIL_WINDOW_SECONDS", "30"))

# --- REST API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Integrators: `Authorization: Bearer <jwt>` or `Authorization: ApiKey <key_id>:<secret>`; browser: session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.OTPSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "brokerx.api.schema.AutoSchema",  # adds the error answers to every operation
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "brokerx.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BrokerX API",
    "DESCRIPTION": "Trading, market data and account API of the BrokerX brokerage.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderTypeEnum": "orders.models.OrderType",
        "OrderEventTypeEnum": "orders.models.OrderEventType",
        "SideEnum": "orders.models.Side",
        "OrderStatusEnum": "orders.models.OrderStatus",
        "OrderClassEnum": "orders.models.OrderClass",
        "MfaMethodEnum": "accounts.models.MfaMethod",
        "ApiKeyScopeEnum": "accounts.models.ApiKeyScope",
    },
}

# --- Accounts: JWT, API keys, MFA, sign-up, lockout (ADR 003) -----------------------------------
# The site's public address, used in links sent by e-mail.
SITE_URL = env("SITE_URL", "http://localhost:8000")
SIMPLE_JWT = {
    # Fixed algorithm: tokens signed otherwise (or with `alg: none`) are refused by the decoder.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env("JWT_SIGNING_KEY", SECRET_KEY),
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=int(env("JWT_ACCESS_SECONDS", "900"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=int(env("JWT_REFRESH_SECONDS", str(7 * 24 * 3600)))),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "LEEWAY": 0,
}
# Keyed hash of API key secrets; defaults to one derived from SECRET_KEY (set its own in production).
API_KEY_PEPPER = env("API_KEY_PEPPER", "api-key-pepper:" + SECRET_KEY)
EMAIL_VERIFICATION_TTL_SECONDS = int(env("EMAIL_VERIFICATION_TTL_SECONDS", str(24 * 3600)))
MFA_CHALLENGE_TTL_SECONDS = 300
MFA_CHALLENGE_MAX_ATTEMPTS = 5
LOGIN_LOCKOUT = {
    "ACCOUNT_FAILURES": int(env("LOGIN_LOCKOUT_ACCOUNT_FAILURES", "5")),
    "IP_FAILURES": int(env("LOGIN_LOCKOUT_IP_FAILURES", "20")),
    "WINDOW_SECONDS": int(env("LOGIN_LOCKOUT_WINDOW_SECONDS", "900")),
}
# Per-scope limits of brokerx.ratelimit ("<n>/<sec|min|hour|day>"); a scope not listed uses its view's default.
RATE_LIMITS: dict[str, str] = {}
OTP_TOTP_ISSUER = "BrokerX"
OTP_EMAIL_SUBJECT = "Your BrokerX sign-in code"
OTP_EMAIL_BODY_TEMPLATE_PATH = "accounts/email/mfa_code.txt"
OTP_EMAIL_TOKEN_VALIDITY = 300
OTP_EMAIL_COOLDOWN_DURATION = 30

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# visibility_timeout: longer than any task's time limit, so a task that is still running is never redelivered.
# The socket timeouts bound a publish to a frozen broker (the read timeout must exceed BRPOP's 1 s), and a consumer
# whose BRPOP reply is overdue reconnects within about 1 + 2 x health_check_interval seconds (ADR 009).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600, "socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 10,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a worker waits for the broker to come back, however long
# A task that meets a dead database connection or a deadlock runs again (brokerx.celery.BrokerXTask), this often.
CELERY_DB_FAULT_RETRIES = int(env("CELERY_DB_FAULT_RETRIES", "5"))
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUE_NAMES = ("critical", "default", "low")
CELERY_TASK_QUEUES = tuple(Queue(name, Exchange(name), routing_key=name) for name in CELERY_QUEUE_NAMES)
# Task routes by task name (`<context>.<task>`): matching is latency critical, e-mail and reports can wait.
CELERY_TASK_ROUTES = {
    "matching.*": {"queue": "critical"},
    "outbox.drain": {"queue": "default"},  # callers pass the event's own queue
    "notifications.send_*": {"queue": "low"},
    "*.report_*": {"queue": "low"},
    "*": {"queue": "default"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep the JSON log format in workers
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Celery's Django fix-up closes every database connection before and after each task (and, with a connection pool
# in a prefork worker, the whole pool, so each task reconnected to Postgres). Outbox drains run hundreds of times
# a second: keep connections across tasks, recycled every this many tasks; brokerx.celery drops a connection
# that errored or outlived CONN_MAX_AGE after each task, as Django does after each request.
CELERY_DB_REUSE_MAX = int(env("CELERY_DB_REUSE_MAX", "1000"))
CELERY_BEAT_SCHEDULE: dict = {
    "orders-expire-day": {"task": "orders.expire_day_orders", "schedule": 60.0, "options": {"expires": 50}},
    "outbox-sweep": {"task": "outbox.sweep", "schedule": 2.0, "options": {"queue": "default", "expires": 10}},
    "outbox-purge": {"task": "outbox.purge", "schedule": 600.0, "options": {"queue": "low", "expires": 300}},
}
# Delivered outbox events are deleted after this many days (dead letters stay); see outbox.services.outbox_purge.
OUTBOX_RETENTION_DAYS = int(env("OUTBOX_RETENTION_DAYS", "7"))
# A due outbox event still pending after this many seconds counts as stuck (manage.py check_invariants).
OUTBOX_PENDING_DEADLINE_SECONDS = float(env("OUTBOX_PENDING_DEADLINE_SECONDS", "300"))
CELERY_BEAT_SCHEDULE_FILENAME = env("CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / ".data" / "celerybeat-schedule"))

# --- Money (portfolios ledger, deposits, withdrawals; idempotency keys) ---------------------------
LEDGER_CURRENCY = env("LEDGER_CURRENCY", "USD")
DEPOSIT_MIN_AMOUNT = Decimal(env("DEPOSIT_MIN_AMOUNT", "1"))
DEPOSIT_MAX_AMOUNT = Decimal(env("DEPOSIT_MAX_AMOUNT", "100000"))
DEPOSIT_DAILY_LIMIT = Decimal(env("DEPOSIT_DAILY_LIMIT", "250000"))
WITHDRAWAL_MAX_AMOUNT = Decimal(env("WITHDRAWAL_MAX_AMOUNT", "100000"))
WITHDRAWAL_DAILY_LIMIT = Decimal(env("WITHDRAWAL_DAILY_LIMIT", "250000"))
# A withdrawal above this waits for a member of staff to approve it (four eyes); its cash is held meanwhile.
WITHDRAWAL_APPROVAL_THRESHOLD = Decimal(env("WITHDRAWAL_APPROVAL_THRESHOLD", "10000"))
DEPOSIT_SETTLE_DELAY_SECONDS = float(env("DEPOSIT_SETTLE_DELAY_SECONDS", "3"))
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", "portfolios.gateway.SimulatedGateway")
# Dotted path of a callable(symbols) -> {symbol: Decimal} giving last/reference prices to the portfolio.
PORTFOLIOS_PRICE_LOOKUP = env("PORTFOLIOS_PRICE_LOOKUP", "")
IDEMPOTENCY_KEY_TTL_HOURS = int(env("IDEMPOTENCY_KEY_TTL_HOURS", "24"))
IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS = int(env("IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS", "60"))
CELERY_IMPORTS = ("brokerx.idempotency",)  # its purge task lives beside the idempotency code
CELERY_BEAT_SCHEDULE["idempotency-keys-purge"] = {
    "task": "brokerx.idempotency_keys_purge", "schedule": 3600.0, "options": {"expires": 600},
}
CELERY_BEAT_SCHEDULE["deposits-pending-sweep"] = {
    "task": "portfolios.deposits_pending_sweep", "schedule": 60.0, "options": {"expires": 50},
}

# --- Trading ---------------------------------------------------------------------------------------
BROKERX_MAKER_FEE_RATE = env("BROKERX_MAKER_FEE_RATE", "0.0002")
BROKERX_TAKER_FEE_RATE = env("BROKERX_TAKER_FEE_RATE", "0.0005")
# Default daily session (UTC) where no TradingSession row says otherwise; day orders expire at the close.
BROKERX_SESSION_OPENS = env("BROKERX_SESSION_OPENS", "00:00")
BROKERX_SESSION_CLOSES = env("BROKERX_SESSION_CLOSES", "23:59:59")

# --- Market data and the market simulator (ADR 005) ----------------------------------------------------
MARKET_DEPTH_LEVELS = int(env("MARKET_DEPTH_LEVELS", "10"))
MARKET_SNAPSHOT_TTL_SECONDS = int(env("MARKET_SNAPSHOT_TTL_SECONDS", "300"))
MARKET_WS_MAX_SYMBOLS = int(env("MARKET_WS_MAX_SYMBOLS", "50"))
# Private streams re-check their user and credential this often (besides closing at once on revocation).
WS_CREDENTIAL_RECHECK_SECONDS = float(env("WS_CREDENTIAL_RECHECK_SECONDS", "60"))
# Off unless asked: `make run` sets BROKERX_SIMULATOR=1; tests run it explicitly.
BROKERX_SIMULATOR = env_bool("BROKERX_SIMULATOR", False)
BROKERX_SIMULATOR_INTERVAL = float(env("BROKERX_SIMULATOR_INTERVAL", "1.0"))
# Per-tick volatility of the reference price random walk, as a fraction of the price.
BROKERX_SIMULATOR_VOLATILITY = Decimal(env("BROKERX_SIMULATOR_VOLATILITY", "0.0008"))
if BROKERX_SIMULATOR:
    CELERY_BEAT_SCHEDULE["market-simulator"] = {
        "task": "simulator.tick", "schedule": BROKERX_SIMULATOR_INTERVAL,
        # Not on `critical`: the simulator is a client of matching, not part of it.
        "options": {"queue": "default", "expires": max(BROKERX_SIMULATOR_INTERVAL * 2, 1.0)},
    }

# --- Logging: structured JSON with the request id ------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "brokerx.observability.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Security defaults for every environment ----------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
