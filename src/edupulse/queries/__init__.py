"""Analysis models: a JSON query (`kind` plus its options) compiled to SQL and run on a project's events by
the query service (service.py). See docs/queries.md."""
