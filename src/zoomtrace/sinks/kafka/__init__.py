"""Apache Kafka sink: every record to Kafka, and to a durable local spool while the broker is away.

URL: ``kafka://host:9092[,host2:9092][?option=value&...]``. Options named ``zoom.*`` are the
sink's own (see ``_sink.ZOOM_OPTIONS``); every other option is passed to librdkafka as is, e.g.
``kafka://k1:9092?linger.ms=5&compression.type=zstd&security.protocol=SSL``.

Delivery: an idempotent producer with ``acks=all``, lz4 compression and batching; the message
key is the record's trace id (``zoomtrace.wire.kafka_codec`` has the topic and message format).

Broker down: ``write`` runs on the pipeline's worker thread and never waits for the broker
beyond a bounded time. Deliveries are confirmed by callbacks; when the broker stops confirming
(no acknowledgement for ``zoom.spool_after_s`` while messages are outstanding, all brokers
down, a failed delivery, a full producer queue, or a ``flush`` that times out), every
unconfirmed record and every later one goes to the *Kafka spool*: segment files in the standard
spool format (``zoomtrace.wire.spool``) under ``<home>/spool-kafka/<node_id>.kafka.<seq>.zspool``. Every
``zoom.retry_interval_s`` (doubling up to 10 s) the sink replays the oldest segment; once the
broker acknowledges again, the segments are replayed in order, each deleted once all of its
records are acknowledged, and new records go directly to Kafka again. Memory stays bounded:
at most ``zoom.max_pending`` records await acknowledgement and one segment (``zoom.segment_bytes``)
is replayed at a time. Node records ``kafka.spooling``, ``kafka.replayed`` and, at close,
``kafka.sink`` carry the counts of spooled, replayed and lost records; every lost record is also
reported to the node's loss counter (its ``lost`` record).

At close, the sink first sends the spool again if the broker answers (so records spooled during an
outage that has ended are not left on local disk), then waits for acknowledgements; what is not
acknowledged within ``zoom.close_timeout_s`` (both together) is written to, or stays in, the spool:
nothing is lost while the broker is down. An "all brokers are down" report served after an idle
stretch may be stale (nothing reports the broker's return): the next records are judged by their
own acknowledgements. Segments of a process that has exited are replayed by
the next process that uses this spool directory (a lock file ``<node_id>.lock`` held by a live
sink keeps others off its segments), or read into a local store by ``zoomtrace ingest``. A
``<node_id>.meta.json`` beside the segments keeps the node's topics for that replay.

The modules: ``_sink`` (the sink: outages, notes, the summary), ``_producer`` (direct sending,
delivery callbacks, health), ``_spool`` (the durable spool on the shared segment writer) and
``_replay`` (sending the spool back, adopting exited nodes' segments).
"""

from zoomtrace.sinks.kafka._sink import KafkaSink

__all__ = ["KafkaSink"]
