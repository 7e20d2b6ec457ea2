"""The one Settings class. Every process reads configuration through get_settings()."""

from __future__ import annotations

import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration from the environment (names as in API.md), with safe local defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Storage and queues. Empty means "the local default": SQLite under var_dir, embedded Redis.
    database_url: str = ""
    redis_url: str = ""
    var_dir: Path = Path("./var")

    host: str = "127.0.0.1"
    port: int = 8000
    # Web origins allowed to open the websocket besides the API's own host (comma separated).
    allowed_origins: str = ""
    secret_key: SecretStr | None = None
    token_ttl_seconds: int = 12 * 3600
    # Argon2id cost (RFC 9106's second recommended profile by default). Tests lower it for speed.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=64 * 1024, ge=1024)

    # Dispatch timing.
    offer_ttl_seconds: int = Field(default=90, ge=1)
    assign_sla_seconds: int = Field(default=120, ge=1)
    urgent_sla_seconds: int = Field(default=30, ge=1)
    batch_window_seconds: float = Field(default=1.0, ge=0.0, le=30.0)
    # "batch": one shared matcher run per window serves every waiting request (production).
    # "per_request": one match job per request, the naive reference bench/load.py measures.
    match_mode: Literal["batch", "per_request"] = "batch"
    sweep_interval_seconds: int = Field(default=5, ge=1)
    # How long a transaction waits for a lock (SQLite's write lock; PostgreSQL's row and
    # advisory locks) before it fails; the API then answers 503 with Retry-After.
    db_lock_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    # An open request whose work has gone quiet this long is re-woken by the sweeper.
    stale_after_seconds: int = Field(default=10, ge=1)

    # ---- matching (issue 8): score weights in km-equivalents (dispatch/matching/scoring.py) ----
    match_weight_distance: float = Field(default=1.0, ge=0.0)
    match_weight_load: float = Field(default=1.0, ge=0.0)
    match_weight_acceptance: float = Field(default=2.0, ge=0.0)
    match_weight_completion: float = Field(default=3.0, ge=0.0)
    match_weight_rating: float = Field(default=2.0, ge=0.0)
    match_weight_no_show: float = Field(default=1.5, ge=0.0)
    match_weight_continuity: float = Field(default=1.0, ge=0.0)
    match_fallback_penalty_km: float = Field(default=2.0, ge=0.0)
    # Jobs at once per caregiver (assigned, in service, or offered and pending).
    caregiver_max_jobs: int = Field(default=3, ge=1)
    # Providers' records are re-read at most this often by a matcher process.
    match_record_cache_seconds: float = Field(default=60.0, ge=0.0)
    # A match worker reads the capacity in use of every provider at most this often, and knows
    # it in between from its own batches (matching/capacity.py snapshot_holdings); 0: every run.
    match_holdings_cache_seconds: float = Field(default=1.0, ge=0.0, le=60.0)
    # Capacity prices (dispatch/matching/prices.py): days of history forecasting the rest of
    # today (0 turns prices off), how often they are recomputed, and the most a unit may cost.
    match_forecast_days: int = Field(default=7, ge=0, le=60)
    match_price_refresh_seconds: int = Field(default=300, ge=10)
    match_price_cap_km: float = Field(default=12.0, ge=0.0)

    # RQ.
    worker_maintenance_interval: int = Field(default=5, ge=1)
    job_timeout_seconds: int = Field(default=60, ge=5)

    # Twilio: unset means messages go to the outbox only.
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str = ""
    public_base_url: str = ""
    operator_phone: str = "+862268000000"
    # Hotline opening hours (local time, HH:MM; close may be 24:00). Outside them every call goes
    # straight to the on-duty operator (OPERATOR_PHONE) instead of the voice menu.
    hotline_open: str = Field(default="07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    hotline_close: str = Field(default="20:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")
    # The Twilio <Say> voice for Mandarin (Amazon Polly's cmn-CN voice).
    hotline_voice: str = "Polly.Zhiyu"

    # Frames a websocket client may fall behind before it is cut off (it reconnects with since=).
    ws_client_queue: int = Field(default=2000, ge=10)

    # ---- recurring services, welfare guarantee, statistics, subsidy ledger (issue 5) ----
    # Plans create their requests this far ahead of the service window (and no earlier).
    plan_horizon_hours: int = Field(default=24, ge=1, le=168)
    plan_schedule_interval_seconds: int = Field(default=60, ge=5)
    welfare_check_interval_seconds: int = Field(default=60, ge=5)
    # How often past days' statistics are rolled up (today is always computed live).
    stats_refresh_interval_seconds: int = Field(default=300, ge=10)
    # An elder living alone or under 特困 support must be visited at least this often (days),
    # unless a visit plan sets their own rhythm.
    welfare_rhythm_days: int = Field(default=7, ge=1, le=90)
    # A scheduled request still not placed this long before its window raises a welfare check.
    welfare_unplaced_lead_minutes: int = Field(default=60, ge=0, le=24 * 60)
    # A scheduled request assigned but never checked in this long after its window raises one.
    welfare_no_show_grace_minutes: int = Field(default=60, ge=0, le=24 * 60)
    # Monthly subsidy entitlement by assistance category, yuan (none: 0).
    subsidy_monthly_dibao: Decimal = Field(default=Decimal("300"), ge=0, decimal_places=2)
    subsidy_monthly_low_income: Decimal = Field(default=Decimal("200"), ge=0, decimal_places=2)
    subsidy_monthly_tekun: Decimal = Field(default=Decimal("600"), ge=0, decimal_places=2)
    # What one verified, completed service draws from the entitlement, yuan.
    price_meal: Decimal = Field(default=Decimal("15"), ge=0, decimal_places=2)
    price_day_care: Decimal = Field(default=Decimal("30"), ge=0, decimal_places=2)
    price_home_care: Decimal = Field(default=Decimal("50"), ge=0, decimal_places=2)
    price_visit: Decimal = Field(default=Decimal("20"), ge=0, decimal_places=2)
    price_emergency: Decimal = Field(default=Decimal("0"), ge=0, decimal_places=2)
    # Targets of the plan's indicators, shown beside each tile on the manager page.
    target_meal_township_share: float = Field(default=1.0, ge=0, le=1)
    target_day_care_township_share: float = Field(default=1.0, ge=0, le=1)
    target_visited_on_rhythm_share: float = Field(default=0.95, ge=0, le=1)
    target_average_rating: float = Field(default=4.5, ge=1, le=5)
    target_complaint_rate: float = Field(default=0.05, ge=0, le=1)

    # ---- visit verification (EVV), issue 4: what flags a visit for the operators ----
    evv_max_distance_m: float = Field(default=300.0, gt=0)
    evv_max_clock_skew_seconds: int = Field(default=300, ge=1)
    # The shortest believable visit of each kind, in minutes (0: never too short).
    evv_min_minutes_meal: int = Field(default=0, ge=0, le=1440)
    evv_min_minutes_day_care: int = Field(default=60, ge=0, le=1440)
    evv_min_minutes_home_care: int = Field(default=30, ge=0, le=1440)
    evv_min_minutes_visit: int = Field(default=10, ge=0, le=1440)
    evv_min_minutes_emergency: int = Field(default=0, ge=0, le=1440)

    # Python's garbage collector in the API process (dispatch/core/collector.py): allocations
    # (less deallocations) between its youngest-generation passes. Python's own default is 700;
    # 0 leaves Python's thresholds as they are. Workers keep Python's.
    gc_threshold: int = Field(default=10_000, ge=0, le=10_000_000)

    log_level: str = "INFO"
    # RQ logs every job at INFO; that drowns everything else on one terminal.
    rq_log_level: str = "WARNING"

    @field_validator("database_url", "redis_url", "public_base_url", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.var_dir / 'eldercare.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from_number)

    @property
    def origin_allow_list(self) -> set[str]:
        return {o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()}

    def signing_key(self) -> str:
        """The token signing key: SECRET_KEY, or one generated once and kept under var_dir."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = self.var_dir / "secret_key"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            # Another process may have raced us; the first rename wins and both read the same key.
            if not path.exists():
                tmp.replace(path)
            else:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip()


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and pin the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
