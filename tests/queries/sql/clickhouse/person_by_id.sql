-- survivor
SELECT person_id FROM person_overrides WHERE person_overrides.project_id = 1 AND old_person_id = 21;

-- exists
SELECT person_id FROM identities WHERE identities.project_id = 1 AND person_id = 21 LIMIT 1;

