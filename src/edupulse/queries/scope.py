"""Person scope: restrict analyses to some persons (advisors see only the persons assigned to them).
`person_scope` returns a condition on `events_resolved` (alias `e`) that every read of events ANDs in
(Context.person_scope)."""

from __future__ import annotations

from sqlglot import exp

from edupulse.queries.compile import EVENTS, PERSON_COLUMN
from edupulse.queries.dialect import DUCKDB, Dialect


def person_scope(project_id: int, identities: list[tuple[str, str]], dialect: Dialect = DUCKDB) -> exp.Expr:
    """`e.resolved_person_id IN (persons of these identities, after merges)`; false for no identities."""
    if not identities:
        return exp.false()
    i, o = "scope_i", "scope_o"
    matches = [exp.and_(exp.column("id_type", i).eq(exp.Literal.string(t)),
                        exp.column("id_value", i).eq(exp.Literal.string(v))) for t, v in identities]
    persons = (
        exp.select(dialect.resolved(exp.column("person_id", o), exp.column("person_id", i)))
        .from_(exp.table_("identities").as_(i))
        .join(exp.table_("person_overrides").as_(o), join_type="left",
              on=exp.and_(exp.column("project_id", o).eq(exp.column("project_id", i)),
                          exp.column("old_person_id", o).eq(exp.column("person_id", i))))
        .where(exp.and_(exp.column("project_id", i).eq(exp.Literal.number(project_id)), exp.or_(*matches)))
    )
    return exp.In(this=exp.column(PERSON_COLUMN, EVENTS), query=persons.subquery())
