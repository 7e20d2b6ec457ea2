"""Test fixtures: each test gets a clean database and a clean Redis.

Database: SQLite by default (a migrated template file, copied per test); PostgreSQL when
TEST_DATABASE_URL is set (a database of this run's own, created and migrated once and
truncated per test). Redis: a real server, the embedded one by default, or TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dispatch.core import db as core_db
from dispatch.core import redis as core_redis
from dispatch.core.config import get_settings
from dispatch.core.redis import EmbeddedRedis
from tests.helpers import Api

ARTIFACTS = Path(__file__).parent / "artifacts"


# ---- Redis ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    url = server.start()
    yield url
    server.stop()


# ---- database ---------------------------------------------------------------------------


class Database:
    """How each test gets a clean database."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pg_admin_url = os.environ.get("TEST_DATABASE_URL")
        self.template: Path | None = None
        self.pg_url: str | None = None

    def setup(self) -> None:
        if self.pg_admin_url:
            admin = make_url(core_db_url(self.pg_admin_url))
            name = f"eldercare_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            engine = create_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            engine.dispose()
            self.pg_url = admin.set(database=name).render_as_string(hide_password=False)
            core_db.migrate(self.pg_url)
        else:
            self.template = self.tmp / "template.db"
            core_db.migrate(f"sqlite:///{self.template}")

    def fresh_url(self, test_dir: Path) -> str:
        if self.pg_url:
            self._truncate()
            return self.pg_url
        assert self.template is not None
        target = test_dir / "eldercare.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def _truncate(self) -> None:
        assert self.pg_url is not None
        engine = create_engine(self.pg_url)
        with engine.begin() as conn:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            query += " AND tablename != 'alembic_version'"
            tables = [r[0] for r in conn.execute(text(query))]
            # The audit log refuses TRUNCATE by trigger; tests may lift that, production may not.
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        engine.dispose()

    def teardown(self) -> None:
        if not self.pg_url or not self.pg_admin_url:
            return
        name = make_url(self.pg_url).database
        engine = create_engine(make_url(core_db_url(self.pg_admin_url)), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def core_db_url(url: str) -> str:
    from dispatch.core.config import normalise_database_url

    return normalise_database_url(url)


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(tmp_path_factory.mktemp("db"))
    db.setup()
    yield db
    db.teardown()


# ---- per-test environment ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    database: Database,
) -> Iterator[dict[str, str]]:
    """A clean database, a flushed Redis, and settings pointing at both."""
    values = {
        "DATABASE_URL": database.fresh_url(tmp_path),
        "REDIS_URL": redis_url,
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
        "BATCH_WINDOW_SECONDS": "0",
        "OFFER_TTL_SECONDS": "90",
        "LOG_LEVEL": "WARNING",
        # Real Argon2id, at a cost that keeps the suite fast.
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8192",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    _reset()
    core_redis.get_redis().flushdb()
    yield values
    _reset()


def _reset() -> None:
    from dispatch.core.auth import forget_principals

    forget_principals()
    get_settings.cache_clear()
    core_db.dispose_engines()
    core_redis.reset_clients()


@pytest.fixture
def client() -> Iterator[TestClient]:
    from dispatch.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
