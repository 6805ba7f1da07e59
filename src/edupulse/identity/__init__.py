"""One-ID: typed identities linked into persons, with merge rules."""
