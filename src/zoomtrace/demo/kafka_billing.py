"""Kafka demo, billing side: consumes ``OrderPlaced`` from Kafka, continues its trace, derives ``PaymentCaptured``.

It reads the orders' data events as ordinary business messages (JSON values) with a plain
confluent-kafka consumer; ``zt.kafka.consume_span`` continues the trace from the headers and
``zt.kafka.record_id`` gives the order event's id for the lineage of the derived event.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass

from confluent_kafka import Consumer

import zoomtrace as zt

log = logging.getLogger("billing")
DEADLINE_S = 60.0


@dataclass
class PaymentCaptured:
    order_id: int
    amount: float
    currency: str = "EUR"


def main(bootstrap: str, env: str, run: str, expected: str) -> None:
    zt.init("billing", env=env, group="billing", version="1.4.2", sink=f"kafka://{bootstrap}", span_cpu=True)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"billing-{run}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([f"{env}.shop.event"])
    done, deadline = 0, time.monotonic() + DEADLINE_S
    try:
        while done < int(expected) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.value() is None:
                continue
            order = json.loads(msg.value() or b"{}")
            if order.get("run") != run:
                continue  # an earlier demo run's order
            with zt.kafka.consume_span(msg, name="charge_order"):
                log.info("charging order %s: %.2f EUR", order["order_id"], order["total"])
                order_event = zt.kafka.record_id(msg)  # the OrderPlaced record: lineage
                zt.event(
                    PaymentCaptured(order["order_id"], order["total"]), sources=[order_event] if order_event else []
                )
            done += 1
    finally:
        consumer.close()
    if done < int(expected):
        sys.exit(f"billing: consumed {done} of {expected} orders before the deadline")
    zt.flush(30)


if __name__ == "__main__":
    main(*sys.argv[1:5])
