"""Operations on top of the analysis engine and the platform: segments (and, later, tags and campaigns), the
account lifecycle, notifications and the daily scheduler."""
