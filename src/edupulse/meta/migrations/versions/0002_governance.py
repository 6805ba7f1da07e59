"""Governance: user lifecycle columns, memberships, sessions, personal keys, append-only audit log, activity,
organization settings, notifications, advisor assignments, metric catalogue.

Revision ID: 0002_governance
Revises: 0003_segments
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_governance"
down_revision = "0003_segments"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def user_fk() -> sa.ForeignKey:
    return sa.ForeignKey("users.id", ondelete="CASCADE")


def project_fk() -> sa.ForeignKey:
    return sa.ForeignKey("projects.id", ondelete="CASCADE")


def _users() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("name", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("disabled_at", TS, nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.String(300), nullable=True))
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", TS, nullable=True))
        batch.add_column(sa.Column("last_login_at", TS, nullable=True))
        batch.add_column(sa.Column("last_active_at", TS, nullable=True))


def _access() -> None:
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), user_fk(), nullable=False, index=True),
        sa.Column("project_id", sa.Integer(), project_fk(), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("user_id", "project_id", name="uq_membership"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), user_fk(), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("client", sa.String(200), nullable=False),
    )
    op.create_table(
        "personal_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), user_fk(), nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "user_activity",
        sa.Column("id", ID, primary_key=True),
        sa.Column("user_id", sa.Integer(), user_fk(), nullable=False, index=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("user_id", "day", "kind", name="uq_user_activity"),
    )
    op.create_table(
        "advisor_assignments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("project_id", sa.Integer(), project_fk(), nullable=False, index=True),
        sa.Column("user_id", sa.Integer(), user_fk(), nullable=False, index=True),
        sa.Column("id_type", sa.String(32), nullable=False),
        sa.Column("id_value", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("project_id", "user_id", "id_type", "id_value", name="uq_advisor_assignment"),
    )


def _audit() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", ID, primary_key=True),
        sa.Column("at", TS, nullable=False, index=True),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True, index=True),
        sa.Column("project_id", sa.Integer(), nullable=True, index=True),
        sa.Column("action", sa.String(64), nullable=False, index=True),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("client", sa.String(200), nullable=False),
    )
    # Append-only in the database itself, whatever code connects to it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""")
        op.execute("""CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")


def _org() -> None:
    op.create_table(
        "org_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", ID, primary_key=True),
        sa.Column("user_id", sa.Integer(), user_fk(), nullable=False, index=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("emailed_at", TS, nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.Column("read_at", TS, nullable=True),
    )


def _metrics() -> None:
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), project_fk(), nullable=False, index=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.UniqueConstraint("project_id", "name", name="uq_metric_name"),
    )
    op.create_table(
        "metric_versions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("metric_id", sa.Integer(), sa.ForeignKey("metrics.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("author", sa.String(300), nullable=False),
        sa.UniqueConstraint("metric_id", "version", name="uq_metric_version"),
    )


def upgrade() -> None:
    _users()
    _access()
    _audit()
    _org()
    _metrics()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in ("metric_versions", "metrics", "notifications", "org_settings", "audit_log", "advisor_assignments",
                  "user_activity", "personal_keys", "auth_sessions", "memberships"):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        for column in ("last_active_at", "last_login_at", "locked_until", "failed_logins", "disabled_reason",
                       "disabled_at", "name"):
            batch.drop_column(column)
