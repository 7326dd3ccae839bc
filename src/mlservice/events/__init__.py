"""The event log: who did what, from where; suspicious-pattern detection and protection."""
