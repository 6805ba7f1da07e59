-- count
SELECT COUNT(*) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE p.person_id IN (SELECT p.person_id FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE COALESCE(NOT (CASE WHEN JSONType(p.properties, 'grade') = 'String' THEN JSONExtractString(p.properties, 'grade') ELSE nullIf(nullIf(JSONExtractRaw(p.properties, 'grade'), ''), 'null') END IS NULL), FALSE));

