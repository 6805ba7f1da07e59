"""Tags as journeys read them (audience.TagSource): the persons with a tag value in force, and whether one person
has it, through the tag service's values (tags/run.py) on the event store; and setting a person's value of an
uploaded tag (the set_tag action) through the tag service, so the value enters the tag's history."""

from __future__ import annotations

from sqlglot import exp

from edupulse.journeys.audience import QueryAudience, identities_tree, persons_of, resolved_person
from edupulse.journeys.outbox import Outcome, Outgoing
from edupulse.journeys.person import Person
from edupulse.meta.db import MetadataError, ProjectInfo
from edupulse.queries.compile import literal
from edupulse.queries.tagvalues import tag_values_tree
from edupulse.tags.run import TagError, TagService, UnknownPerson, ref


class StoreTags:
    def __init__(self, service: TagService, audience: QueryAudience) -> None:
        self.service, self.audience = service, audience

    def _holders(self, project_id: int, tag: str, value: str | None) -> exp.Select | None:
        """person_id of the persons with the tag (and value) in force; None: no such person tag."""
        project = self.audience.project(project_id)
        try:
            info = self.service.tag(project, tag)
        except MetadataError:
            return None
        if info.spec.unit != "person":
            return None
        values = tag_values_tree(project_id, ref(info)).subquery("tv")
        tree = exp.select(exp.column("person_id", "tv")).from_(values)
        if value is not None:
            tree = tree.where(exp.column("value", "tv").eq(literal(value)))
        return tree

    def members(self, project_id: int, tag: str, value: str | None) -> list[Person]:
        holders = self._holders(project_id, tag, value)
        if holders is None:
            return []
        ctx = self.audience.context(project_id)
        tree = identities_tree(ctx).where(exp.In(this=resolved_person(ctx), query=exp.Subquery(this=holders)))
        return persons_of(self.audience.executor(ctx).run(tree, max_rows=20_000_000))

    def count(self, project_id: int, tag: str, value: str | None) -> int:
        """How many persons have the tag (and value) in force now."""
        holders = self._holders(project_id, tag, value)
        if holders is None:
            return 0
        ctx = self.audience.context(project_id)
        tree = exp.select(exp.func("count", exp.Distinct(expressions=[exp.column("person_id", "h")]))).from_(
            exp.Subquery(this=holders, alias=exp.TableAlias(this=exp.to_identifier("h"))))
        return int(self.audience.executor(ctx).run(tree, max_rows=1)[0][0])

    def has_tag(self, project_id: int, person: Person, tag: str, value: str | None) -> bool:
        holders = self._holders(project_id, tag, value)
        if holders is None:
            return False
        ctx = self.audience.context(project_id)
        pairs = [exp.Tuple(expressions=[literal(t), literal(v)]) for t, v in person.ids]
        tree = identities_tree(ctx).where(exp.and_(
            exp.In(this=exp.Tuple(expressions=[exp.column("id_type", "i"), exp.column("id_value", "i")]),
                   expressions=pairs),
            exp.In(this=resolved_person(ctx), query=exp.Subquery(this=holders)))).limit(1)
        return bool(self.audience.executor(ctx).run(tree, max_rows=1))

    def settable(self, project: ProjectInfo, tag: str) -> str:
        """The value type of a tag a journey may set (an uploaded person tag); raises with the reason if not."""
        return self.service.settable(self.audience.project(project.id), tag).spec.value_type.value

    def set_tag(self, out: Outgoing) -> Outcome:
        """A set_tag delivery: the person's value of an uploaded tag, set by the journey (recorded in the tag's
        runs, its value's detail and the audit log). A person the store does not know yet is tried again
        (events are stored seconds after they are acknowledged); a tag that is gone or not settable is not."""
        project = self.audience.project(out.project_id)
        ids = [(str(t), str(v)) for t, v in out.request.get("ids", [])]
        by = f"journey:{out.journey_id}"
        try:
            run = self.service.set_value(project, str(out.request["tag"]), ids, out.request.get("value"), by,
                                         note={"journey": out.journey_id, "idempotency_key": out.idempotency_key})
        except UnknownPerson as exc:
            return Outcome(False, str(exc))
        except (MetadataError, TagError) as exc:
            return Outcome(False, str(exc), retry=False)
        if run.status != "finished":
            return Outcome(False, run.error or "the tag's value was not stored")
        return Outcome(True, f"tag {out.request['tag']} = {out.request.get('value')} (run {run.id}, "
                             f"{run.changed} changed)")
