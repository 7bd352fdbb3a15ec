"""Runtime: the process side of Zoom, between capture and the sinks.

``lifecycle`` starts and stops this process's ``node`` (``init``, ``shutdown``, exit,
signals, fork); the node owns the ``pipeline`` (a bounded queue and one background
worker) and the ``encoder``, which turns captured tuples into records on that worker:
values made JSON-safe (``sanitize``), secrets removed (``scrub``), code resolved to
repository files and commits (``provenance``).
"""
