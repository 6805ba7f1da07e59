"""Accounts and access: passwords, roles and permissions, personal-data masking. HTTP dependencies are in
edupulse.api.auth; the tables are in edupulse.meta.governance."""
