"""Education models trained on the project's own history (the `ml` extra, scikit-learn, imported when a model
runs): features aggregated in SQL from the standard events only, one row per unit (features.py), a logistic
model whose score explains itself by each feature's contribution, evaluated on held-out data and refused
when it fails the gate (train.py)."""
