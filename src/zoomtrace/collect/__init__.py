"""Collect: records from wherever they were sent, into the store.

``spool_ingest`` reads the spool segments of a home (the embedded sink's and the Kafka
sink's), ``kafka_collector`` is a Kafka consumer group, ``otlp_receiver`` accepts
OTLP/HTTP from OpenTelemetry services. All three write through the store's
``StoreWriter`` protocol by way of ``_batching`` (prepared batches, one transaction each,
retries, one batch written while the next is read); the two long-running ones stop
cleanly on SIGTERM or SIGINT through ``signals``. ``open_session`` is how readers open
a home's store: it ingests the home's spool first.
"""

from zoomtrace.collect._session import open_session

__all__ = ["open_session"]
