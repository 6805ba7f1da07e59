-- count
SELECT COUNT(*) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE NOT (CASE WHEN JSONType(p.properties, 'grade') = 'String' THEN JSONExtractString(p.properties, 'grade') ELSE nullIf(nullIf(JSONExtractRaw(p.properties, 'grade'), ''), 'null') END IS NULL) AND p.person_id IN (SELECT person_id FROM identities WHERE identities.project_id = 1 AND startsWith(id_value, '1'));

-- page
SELECT p.person_id, toString(p.properties) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p WHERE NOT (CASE WHEN JSONType(p.properties, 'grade') = 'String' THEN JSONExtractString(p.properties, 'grade') ELSE nullIf(nullIf(JSONExtractRaw(p.properties, 'grade'), ''), 'null') END IS NULL) AND p.person_id IN (SELECT person_id FROM identities WHERE identities.project_id = 1 AND startsWith(id_value, '1')) ORDER BY p.person_id LIMIT 4 OFFSET 0;

