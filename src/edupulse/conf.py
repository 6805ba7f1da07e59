"""Settings: one pydantic-settings model for env vars (EDUPULSE_ prefix, __ nesting) and CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseModel):
    """Limits and batching of the write path."""

    max_body_bytes: int = Field(20 * 1024 * 1024, description="Largest accepted request body (after gunzip).")
    max_batch_records: int = Field(10_000, description="Most records in one ingestion request.")
    max_record_bytes: int = Field(256 * 1024, description="Largest single record, serialized.")
    max_future_seconds: int = Field(24 * 3600, description="How far in the future an event time may be.")
    max_past_days: int = Field(3650 * 2, description="How far in the past an event time may be.")
    retry_window_days: int = Field(
        7, ge=0, le=3650,
        description="A retried record (same event_id) is stored once whatever time it carries when it arrives "
                    "within this many days of the stored copy; beyond, when it carries the same time (0: only then).")
    load_batch_records: int = Field(100_000, description="Records the loader moves into the store at once.")
    load_interval_ms: int = Field(200, description="How often the loader looks for new log records.")
    wal_segment_bytes: int = Field(64 * 1024 * 1024, description="Size at which the write-ahead log rolls.")
    xapi_index_seconds: float = Field(
        1.0, gt=0, le=3600,
        description="How often the server moves the xAPI statements it accepted into the indexed tables, with a "
                    "SQLite metadata database (a read of statements does it first, so this sets only how large the "
                    "batches are).")
    validator_processes: int | None = Field(
        None, ge=0, le=64,
        description="Worker processes that validate ingestion requests beside the server process (default: two "
                    "fewer than the CPUs, at most 4, so none on 2 CPUs where they measured no faster; 0: "
                    "validate in the server process).",
    )

    def validators(self) -> int:
        if self.validator_processes is not None:
            return self.validator_processes
        return max(0, min(4, (os.cpu_count() or 1) - 2))


class QuerySettings(BaseModel):
    """Guard rails of the analysis engine."""

    timeout_seconds: float = Field(60.0, gt=0, description="Time limit of one analysis query.")
    max_result_rows: int = Field(100_000, ge=1, description="Most rows one statement of an analysis may return.")
    cache_entries: int = Field(256, ge=0, description="Results kept in the result cache (0: no cache).")


class AuthSettings(BaseModel):
    """Sign-in, sessions and lockout."""

    session_days: int = Field(14, ge=1, le=365, description="How long a sign-in session lasts.")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="Secure flag of the session cookie: auto sets it when the request came over HTTPS "
                            "(directly or through a proxy that sends X-Forwarded-Proto).")
    max_failed_logins: int = Field(5, ge=1, description="Failed sign-ins in a row that lock an account.")
    lockout_minutes: int = Field(15, ge=1, description="How long a locked account stays locked.")
    login_attempts_per_ip: int = Field(
        30, ge=1, description="Sign-in attempts one client address may make in 5 minutes before it gets 429.")


class SmtpSettings(BaseModel):
    """Outgoing email (notifications to admins); nothing is sent when host is empty."""

    host: str = Field("", description="SMTP server; empty: notifications are only kept in the database.")
    port: int = Field(25, description="SMTP port (587 for STARTTLS, 465 for TLS).")
    sender: str = Field("edupulse@localhost", description="From address.")
    username: str = Field("", description="SMTP user name, if the server needs one.")
    password: str = Field("", description="SMTP password.")
    security: Literal["none", "starttls", "tls"] = Field("none", description="Connection security.")
    timeout_seconds: float = Field(10.0, description="Time limit of one SMTP conversation.")


class SchedulerSettings(BaseModel):
    """The built-in scheduler of daily jobs (account review) in the server process."""

    enabled: bool = Field(True, description="Run daily jobs in the server process.")
    daily_at: str = Field("03:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                          description="Local time (default time zone) at which daily jobs run.")
    check_seconds: int = Field(300, ge=1, description="How often the scheduler looks whether a job is due.")


class TagSettings(BaseModel):
    """Tags (docs/tags.md): how long a request to run one waits for it, and how long their history is kept."""

    run_wait_seconds: float = Field(
        5.0, ge=0, le=600, description="How long POST /api/v1/tags/NAME/run waits for the run before it answers "
                                       "202 with the run to poll (a request's ?wait= or Prefer header chooses "
                                       "otherwise).")
    history_days: int = Field(
        400, ge=365, le=36500, description="Days of tag history kept (at least 365): the daily job forgets older "
                                           "changes, keeping each unit's value in force on the first kept day; a "
                                           "value asked for an earlier day is refused with the reason.")


class JourneySettings(BaseModel):
    """Journeys (automated operations): the worker that advances persons and sends, and where it may send."""

    enabled: bool = Field(True, description="Run journeys (triggers, steps, sending) in the server process.")
    allowed_hosts: str = Field(
        "", description="Comma-separated host names and CIDR ranges webhooks may reach although they are private, "
                        "loopback or link-local (added to each project's own list).")
    secret_key: str = Field("", description="Key (Fernet, url-safe base64) that encrypts channel secrets; empty: "
                                            "a key file journeys.key in the data directory, made on first use.")
    tick_ms: int = Field(200, ge=10, description="How often the worker looks for due persons and messages.")
    max_attempts: int = Field(8, ge=1, le=50, description="Tries of one message before it goes to the dead letters.")
    backoff_seconds: float = Field(5.0, gt=0, description="Wait before the first retry; doubles with each retry.")
    max_backoff_seconds: float = Field(3600.0, gt=0, description="Longest wait between two tries.")
    in_flight_seconds: float = Field(60.0, gt=0, description="A message being sent for longer (the server died "
                                                              "meanwhile) is sent again, with the same key.")
    timeout_seconds: float = Field(10.0, gt=0, description="Time limit of one webhook, robot or SMTP call.")
    send_threads: int = Field(8, ge=1, le=64, description="Messages sent at the same time.")
    send_batch: int = Field(100, ge=1, le=1000, description="Messages sent and recorded together: at most this many "
                                                           "are in flight when the server dies.")


class ClickHouseSettings(BaseModel):
    """The ClickHouse server store (used when `events_url` names a ClickHouse server)."""

    cluster: str = Field(
        "", description="Cluster name (from the server's remote_servers): tables are created ON CLUSTER, "
                        "ReplicatedMergeTree, with events sharded through a Distributed table; empty: plain "
                        "MergeTree on one server.")
    timeout_seconds: float = Field(300.0, gt=0, description="Time limit of one request to the server (analyses "
                                                             "have their own limit, query.timeout_seconds).")
    verify_tls: bool = Field(True, description="Check the server's TLS certificate (https:// and clickhouses://).")


class NodeSettings(BaseModel):
    """Several API processes sharing one metadata database and one ClickHouse server."""

    name: str = Field("", description="Name of this API process among several (default: the host name and the "
                                      "data directory's id); each process keeps its own write-ahead log.")
    lock_timeout_seconds: float = Field(
        60.0, gt=0, description="How long a loader waits for another process's lock on a project's identities "
                                "before it tries the batch again.")
    scheduler_lease_seconds: int = Field(
        600, ge=10, description="How long the process that runs the scheduled jobs holds the lease in the "
                                "metadata database before another may take over.")


class Settings(BaseSettings):
    """Everything EduPulse can be configured with. CLI flags override environment variables."""

    model_config = SettingsConfigDict(env_prefix="EDUPULSE_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(Path("./edupulse-data"), description="Directory holding events, log and metadata.")
    metadata_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata database; default is SQLite in the data directory."
    )
    metadata_busy_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a request waits for the metadata database when another writer holds it "
                                "(SQLite's busy timeout, PostgreSQL's lock_timeout) before it is answered 503 "
                                "with Retry-After.")
    metadata_pool_size: int | None = Field(
        None, ge=1, le=1000,
        description="Connections each server process keeps open to the metadata database (default: 40 on SQLite, "
                    "one per thread of the server; 20 on PostgreSQL, which may open 10 more for a moment: keep the "
                    "processes' sum under the PostgreSQL server's max_connections).")
    events_url: str = Field(
        "", description="Where events live: empty for the embedded store (DuckDB in the data directory); "
                        "clickhouse://user:password@host:8123/database (or clickhouses://, http://, https://) for "
                        "a ClickHouse server shared by several API processes (docs/scale-out.md).")
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8000, description="Port the server listens on.")
    default_timezone: str = Field("Asia/Shanghai", description="Time zone of new projects.")
    ingest: IngestSettings = IngestSettings()
    query: QuerySettings = QuerySettings()
    auth: AuthSettings = AuthSettings()
    smtp: SmtpSettings = SmtpSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    tags: TagSettings = TagSettings()
    journeys: JourneySettings = JourneySettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    node: NodeSettings = NodeSettings()

    @property
    def resolved_metadata_url(self) -> str:
        if self.metadata_url:
            return self.metadata_url
        return f"sqlite:///{(self.data_dir / 'metadata.sqlite').resolve()}"
