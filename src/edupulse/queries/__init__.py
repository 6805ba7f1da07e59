"""Analysis models: a JSON query (`kind` plus its options) compiled to SQL and run on a project's events.
See docs/queries.md."""

from edupulse.queries import attribution as _attribution  # noqa: F401  (registers the runner)
from edupulse.queries import distribution as _distribution  # noqa: F401  (registers the runner)
from edupulse.queries import funnel as _funnel  # noqa: F401  (registers the runner)
from edupulse.queries import interval as _interval  # noqa: F401  (registers the runner)
from edupulse.queries import ltv as _ltv  # noqa: F401  (registers the runner)
from edupulse.queries import paths as _paths  # noqa: F401  (registers the runner)
from edupulse.queries import person as _person  # noqa: F401  (registers the runner)
from edupulse.queries import retention as _retention  # noqa: F401  (registers the runner)
from edupulse.queries import segments as _segments  # noqa: F401  (registers the runner and segment look-up)
from edupulse.queries import sql as _sql  # noqa: F401  (registers the runner)
from edupulse.queries import trends as _trends  # noqa: F401  (registers the runner)
from edupulse.queries.base import RUNNERS, QueryError, parse_query, run_query

__all__ = ["RUNNERS", "QueryError", "parse_query", "run_query"]
