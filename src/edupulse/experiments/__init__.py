"""A/B testing: experiment definitions (model.py), GrowthBook-compatible assignment (hashing.py, features.py),
metrics as per-unit plans (metrics.py), their SQL (sql.py) and results (results.py)."""
