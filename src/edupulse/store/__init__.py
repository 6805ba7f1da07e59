"""The event-store seam: one interface (base.py), one implementation per engine."""
