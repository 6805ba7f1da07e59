"""Operations that run on their own: the account lifecycle, notifications and the daily scheduler."""
