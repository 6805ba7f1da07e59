"""Tags, scores and tiers (标签与画像) of persons and groups: definitions (model.py), their SQL (compile.py and
builtin.py), runs that keep every value with its history in the event store (run.py), uploaded values
(upload.py) and the tags every project has from the start (defaults.py)."""
