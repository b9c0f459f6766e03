"""Test settings: real Postgres and Redis (named by the environment), fast hashing, in-memory e-mail."""
from .base import *  # noqa: F403
from .base import DATABASES, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; tests never ship
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
NOTIFICATIONS_EMAIL_WINDOW_SECONDS = 0  # e-mails due as soon as drained; the window has tests of its own
# Several suites may share one Postgres server: the suffix keeps their test databases apart.
# Tests open a connection per thread and close it themselves: no pool.
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": "test_brokerx" + env("TEST_DB_SUFFIX", "")}
