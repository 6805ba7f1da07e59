"""xAPI document resources (State, Agent Profile, Activity Profile), canonical Activities and attachment contents;
partial indexes on the statements' voids, ref_id and registration; the statements' agent and activity keys keyed
by their lookup (without rowid on SQLite), so storing a statement writes fewer index pages.

Revision ID: 0007_xapi_documents
Revises: 0004_ui
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_xapi_documents"
down_revision = "0004_ui"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _project() -> sa.Column:
    return sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


# Most statements neither void nor refer to another, and many have no registration: indexes of only the rows that
# have a value cost those statements nothing to insert (the filters ask for values, which implies not null).
PARTIAL = ("voids", "ref_id", "registration")


KEYS = (("xapi_statement_agents", "agent_key", 2100), ("xapi_statement_activities", "activity_id", 2048))


def _rekey(table: str, column: str, length: int) -> None:
    """Rebuild a key table with the primary key (project_id, key, statement_pk), keeping its rows (one per key
    and statement, direct when any was)."""
    op.create_table(
        f"{table}_new",
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(column, sa.String(length), primary_key=True),
        sa.Column("statement_pk", sa.BigInteger(), primary_key=True),
        sa.Column("direct", sa.Boolean(), nullable=False),
        sqlite_with_rowid=False,
    )
    direct = "max(CASE WHEN direct THEN 1 ELSE 0 END) = 1"
    op.execute(f"INSERT INTO {table}_new (project_id, {column}, statement_pk, direct) "
               f"SELECT project_id, {column}, statement_pk, {direct} FROM {table} "
               f"GROUP BY project_id, {column}, statement_pk")
    op.drop_table(table)
    op.rename_table(f"{table}_new", table)


def upgrade() -> None:
    for table, column, length in KEYS:
        _rekey(table, column, length)
    for column in PARTIAL:
        op.drop_index(f"ix_xapi_statements_{column}", table_name="xapi_statements")
        condition = sa.text(f"{column} IS NOT NULL")
        op.create_index(f"ix_xapi_statements_{column}", "xapi_statements", [column], sqlite_where=condition,
                        postgresql_where=condition)
    op.create_table(
        "xapi_documents",
        sa.Column("id", ID, primary_key=True),
        _project(),
        sa.Column("resource", sa.String(16), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("document_key", sa.String(64), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("agent_key", sa.Text(), nullable=False),
        sa.Column("registration", sa.String(36), nullable=False),
        sa.Column("document_id", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(40), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("project_id", "document_key", name="uq_xapi_document_key"),
    )
    op.create_index("ix_xapi_documents_scope_key", "xapi_documents", ["scope_key"])
    op.create_table(
        "xapi_activities",
        sa.Column("id", ID, primary_key=True),
        _project(),
        sa.Column("activity_key", sa.String(64), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("project_id", "activity_key", name="uq_xapi_activity_key"),
    )
    op.create_table(
        "xapi_attachments",
        sa.Column("id", ID, primary_key=True),
        _project(),
        sa.Column("sha2", sa.String(128), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("project_id", "sha2", name="uq_xapi_attachment_sha2"),
    )


def downgrade() -> None:
    for table in ("xapi_attachments", "xapi_activities", "xapi_documents"):
        op.drop_table(table)
    for column in PARTIAL:
        op.drop_index(f"ix_xapi_statements_{column}", table_name="xapi_statements")
        op.create_index(f"ix_xapi_statements_{column}", "xapi_statements", [column])
    for table, column, length in KEYS:
        op.create_table(
            f"{table}_old",
            sa.Column("id", ID, primary_key=True),
            sa.Column("statement_pk", ID, sa.ForeignKey("xapi_statements.id", ondelete="CASCADE"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column(column, sa.String(length), nullable=False),
            sa.Column("direct", sa.Boolean(), nullable=False),
        )
        op.execute(f"INSERT INTO {table}_old (statement_pk, project_id, {column}, direct) "
                   f"SELECT statement_pk, project_id, {column}, direct FROM {table}")
        op.drop_table(table)
        op.rename_table(f"{table}_old", table)
        op.create_index(f"ix_{table}_statement_pk", table, ["statement_pk"])
        op.create_index(f"ix_{table}_{column}", table, ["project_id", column])
