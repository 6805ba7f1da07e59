-- survivor
SELECT person_id FROM person_overrides WHERE person_overrides.project_id = 1 AND old_person_id = 3;

-- exists
SELECT person_id FROM identities WHERE identities.project_id = 1 AND person_id = 3 LIMIT 1 OFFSET 0;

