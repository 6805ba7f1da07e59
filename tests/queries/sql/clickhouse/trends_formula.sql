-- series 0
WITH base AS (SELECT (toInt64(toUnixTimestamp(toDateTime(toStartOfMonth(fromUnixTimestamp64Micro((toUnixTimestamp64Micro(e.time) + 28800000000), 'UTC')), 'UTC'))) * 1000000) AS bucket FROM events AS e WHERE e.project_id = 1 AND e.time >= toDateTime64('2025-04-14 16:00:00.000000', 6, 'UTC') AND e.time < toDateTime64('2025-05-31 16:00:00.000000', 6, 'UTC') AND e.event = 'lesson_attended'), agg AS (SELECT bucket, COUNT(*) AS cnt FROM base GROUP BY bucket) SELECT bucket, SUM(cnt) AS value, SUM(cnt) AS total, SUM(cnt) AS count FROM agg GROUP BY bucket;

-- series 1
WITH base AS (SELECT (toInt64(toUnixTimestamp(toDateTime(toStartOfMonth(fromUnixTimestamp64Micro((toUnixTimestamp64Micro(e.time) + 28800000000), 'UTC')), 'UTC'))) * 1000000) AS bucket FROM events AS e WHERE e.project_id = 1 AND e.time >= toDateTime64('2025-04-14 16:00:00.000000', 6, 'UTC') AND e.time < toDateTime64('2025-05-31 16:00:00.000000', 6, 'UTC') AND e.event = 'lesson_scheduled'), agg AS (SELECT bucket, COUNT(*) AS cnt FROM base GROUP BY bucket) SELECT bucket, SUM(cnt) AS value, SUM(cnt) AS total, SUM(cnt) AS count FROM agg GROUP BY bucket;

