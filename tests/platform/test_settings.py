"""Production settings refuse weak configuration, and `check --deploy` is clean when configured."""
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
STRONG_KEY = "p7Qz-3vN9xLr_2Kc8WmYt4Hs6Jd1Fb5Ge0Ua9Ri3Oe7Tw2Ys5Qk8Zm1Xn4Vc6Bl"


def _prod_env(**overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env.update({"DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brokerx"),
                "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                "ALLOWED_HOSTS": "brokerx.example", "CSRF_TRUSTED_ORIGINS": "https://brokerx.example"})
    env.update(overrides)
    return env


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args, "--settings=brokerx.settings.prod"],
                          cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", env=_prod_env())

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_the_development_key():
    from brokerx.settings.base import DEV_SECRET_KEY

    result = _manage("check", env=_prod_env(SECRET_KEY=DEV_SECRET_KEY))

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_deploy_check_is_clean():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_prod_env(SECRET_KEY=STRONG_KEY))

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
