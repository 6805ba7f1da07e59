SELECT COUNT(*) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p;

SELECT p.person_id, CAST(p.properties AS TEXT) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p ORDER BY p.person_id LIMIT 5 OFFSET 2;

SELECT person_id, id_type, id_value FROM identities WHERE identities.project_id = 1 AND person_id IN (3, 4, 5, 6) ORDER BY person_id NULLS FIRST, id_type NULLS FIRST, id_value NULLS FIRST;
