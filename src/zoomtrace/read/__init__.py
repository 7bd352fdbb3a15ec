"""Read: what a reader sees, assembled above the store.

``model`` declares the read model once (msgspec Structs for a record, a node, a trace
summary, a lineage and a story with its spans, records and nodes); ``query`` asks a
``StoreReader`` for rows and answers in the model, with ``_story`` assembling a trace's
rows into its story; ``render`` writes the model for a terminal or as JSON and ``times``
parses durations and times, for the CLI, the UI and the demo alike. ``changes`` answers what changed
between commits (error groups, regressions; the tests in ``stats``) and ``render_changes`` writes it as text.
"""
