SELECT COUNT(*) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE NOT JSON_EXTRACT_STRING(p.properties, '/grade') IS NULL AND p.person_id IN (SELECT person_id FROM identities WHERE identities.project_id = 1 AND STARTS_WITH(id_value, '1'));

SELECT p.person_id, CAST(p.properties AS TEXT) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE NOT JSON_EXTRACT_STRING(p.properties, '/grade') IS NULL AND p.person_id IN (SELECT person_id FROM identities WHERE identities.project_id = 1 AND STARTS_WITH(id_value, '1')) ORDER BY p.person_id LIMIT 4 OFFSET 0;

SELECT person_id, id_type, id_value FROM identities WHERE identities.project_id = 1 AND person_id IN (1, 2, 3) ORDER BY person_id NULLS FIRST, id_type NULLS FIRST, id_value NULLS FIRST;
