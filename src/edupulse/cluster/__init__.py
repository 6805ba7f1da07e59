"""Several API processes sharing one metadata database (PostgreSQL) and one ClickHouse server
(docs/scale-out.md)."""
