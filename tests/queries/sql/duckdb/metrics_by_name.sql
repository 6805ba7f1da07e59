-- series 0
WITH base AS (SELECT EPOCH_US(DATE_TRUNC('MONTH', MAKE_TIMESTAMP((EPOCH_US(e.time) + 28800000000)))) AS bucket FROM events AS e WHERE e.project_id = 1 AND e.time >= CAST('2025-04-14 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.time < CAST('2025-05-31 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.event = 'lesson_attended'), agg AS (SELECT bucket, COUNT(*) AS cnt FROM base GROUP BY bucket) SELECT bucket, SUM(cnt) AS value, SUM(cnt) AS total, SUM(cnt) AS count FROM agg GROUP BY bucket;

-- series 1
WITH base AS (SELECT EPOCH_US(DATE_TRUNC('MONTH', MAKE_TIMESTAMP((EPOCH_US(e.time) + 28800000000)))) AS bucket FROM events AS e WHERE e.project_id = 1 AND e.time >= CAST('2025-04-14 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.time < CAST('2025-05-31 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.event = 'lesson_scheduled'), agg AS (SELECT bucket, COUNT(*) AS cnt FROM base GROUP BY bucket) SELECT bucket, SUM(cnt) AS value, SUM(cnt) AS total, SUM(cnt) AS count FROM agg GROUP BY bucket;

-- series 2
WITH base AS (SELECT EPOCH_US(DATE_TRUNC('MONTH', MAKE_TIMESTAMP((EPOCH_US(e.time) + 28800000000)))) AS bucket, COALESCE(o.person_id, e.person_id) AS person FROM events AS e LEFT JOIN person_overrides AS o ON o.project_id = 1 AND o.old_person_id = e.person_id WHERE e.project_id = 1 AND e.time >= CAST('2025-04-14 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.time < CAST('2025-05-31 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.event = 'lead_created'), flat AS (SELECT bucket, person FROM base) SELECT bucket, GROUPING(bucket) AS whole, COUNT(DISTINCT person) AS value FROM flat GROUP BY GROUPING SETS ((bucket), ());

-- series 3
WITH base AS (SELECT EPOCH_US(DATE_TRUNC('MONTH', MAKE_TIMESTAMP((EPOCH_US(e.time) + 28800000000)))) AS bucket FROM events AS e WHERE e.project_id = 1 AND e.time >= CAST('2025-04-14 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.time < CAST('2025-05-31 16:00:00.000000+00' AS TIMESTAMPTZ) AND e.event = 'lead_created'), agg AS (SELECT bucket, COUNT(*) AS cnt FROM base GROUP BY bucket) SELECT bucket, SUM(cnt) AS value, SUM(cnt) AS total, SUM(cnt) AS count FROM agg GROUP BY bucket;

