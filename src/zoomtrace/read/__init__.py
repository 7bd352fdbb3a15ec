"""Read: what a reader sees, assembled above the store.

``model`` declares the read model once (msgspec Structs for a story, its spans,
records and nodes); ``story`` assembles it from the rows a ``StoreReader`` returns;
``render`` writes it for a terminal or as JSON and ``times`` parses durations and
times, for the CLI, the UI and the demo alike.
"""
