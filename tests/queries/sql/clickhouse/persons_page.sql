-- count
SELECT COUNT(*) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p;

-- page
SELECT p.person_id, toString(p.properties) FROM (SELECT person_id, person_id AS resolved_person_id, properties FROM persons WHERE persons.project_id = 1) AS p ORDER BY p.person_id LIMIT 5 OFFSET 2;

