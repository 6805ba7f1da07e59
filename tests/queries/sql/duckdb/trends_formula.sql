-- series 0
WITH base AS (SELECT EPOCH_US(DATE_TRUNC('MONTH', MAKE_TIMESTAMP((EPOCH_US(e.time) + 28800000000)))) AS bucket FROM events AS e WHERE e.project_id = 1 AND e.time >= CAST('2025-04-14 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.time < CAST('2025-05-31 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.event = 'lesson_attended'), agg AS (SELECT bucket, COUNT(*) AS cnt FROM base GROUP BY bucket) SELECT bucket, SUM(cnt) AS value, SUM(cnt) AS total, SUM(cnt) AS count FROM agg GROUP BY bucket;

-- series 1
WITH base AS (SELECT EPOCH_US(DATE_TRUNC('MONTH', MAKE_TIMESTAMP((EPOCH_US(e.time) + 28800000000)))) AS bucket FROM events AS e WHERE e.project_id = 1 AND e.time >= CAST('2025-04-14 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.time < CAST('2025-05-31 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.event = 'lesson_scheduled'), agg AS (SELECT bucket, COUNT(*) AS cnt FROM base GROUP BY bucket) SELECT bucket, SUM(cnt) AS value, SUM(cnt) AS total, SUM(cnt) AS count FROM agg GROUP BY bucket;

