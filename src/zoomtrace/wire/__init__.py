"""Wire: the shapes records take between processes, with no behaviour of their own.

``record`` is the write model (one msgspec Struct for every kind of fact); ``spool``
is the segment file format and the home's layout; ``kafka_codec`` and
``otlp_mapping`` map records to Kafka messages and OpenTelemetry protobuf and back;
``propagation`` is W3C Trace Context and Baggage. Every other stage imports these;
they import nothing of Zoom's.
"""
