-- count
SELECT COUNT(*) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE p.person_id IN (SELECT p.person_id FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE COALESCE(NOT JSON_EXTRACT_STRING(p.properties, '/grade') IS NULL, FALSE));

