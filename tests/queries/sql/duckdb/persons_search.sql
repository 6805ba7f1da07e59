-- count
SELECT COUNT(*) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE NOT JSON_EXTRACT_STRING(p.properties, '/grade') IS NULL AND p.person_id IN (SELECT person_id FROM identities WHERE identities.project_id = 1 AND STARTS_WITH(id_value, '1'));

-- page
SELECT p.person_id, CAST(p.properties AS TEXT) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE NOT JSON_EXTRACT_STRING(p.properties, '/grade') IS NULL AND p.person_id IN (SELECT person_id FROM identities WHERE identities.project_id = 1 AND STARTS_WITH(id_value, '1')) ORDER BY p.person_id LIMIT 4 OFFSET 0;

