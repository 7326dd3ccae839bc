"""The event log: who did what, from where, and suspicious-pattern detection.

Other domains record with ``events.emit(...)``; the request middleware, the writer thread, the
detection rules and the queries are the package's own modules. Events never import a domain
above them: whatever must react to a written event (security alerts, live updates, metrics)
subscribes to ``EventLog`` in ``app.py``."""

from mlservice.events.recording import emit

__all__ = ["emit"]
