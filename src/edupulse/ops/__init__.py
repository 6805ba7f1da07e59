"""Operations on top of the analysis engine: segments (and, later, tags and campaigns)."""
