"""Kafka demo, orders side: each order is a data event published to Kafka as a business message.

The record goes through Zoom's Kafka sink: on ``{env}.shop.event`` its value is the order's
JSON exactly and the trace travels in the headers (``zoom.*`` and ``traceparent``).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import zoomtrace as zt

log = logging.getLogger("orders")


@dataclass
class OrderPlaced:
    run: str
    order_id: int
    customer: str
    items: list[str] = field(default_factory=list)
    total: float = 0.0


def main(bootstrap: str, env: str, run: str) -> None:
    zt.init("orders", env=env, group="shop", version="2.0.1", sink=f"kafka://{bootstrap}", span_cpu=True)
    for order_id, (customer, items, total) in enumerate(
        [("ada", ["keyboard"], 89.0), ("grace", ["monitor", "cable"], 240.5), ("linus", ["laptop stand"], 35.0)],
        start=1,
    ):
        with zt.span("place_order", on_behalf_of=customer, order_id=order_id) as span:
            zt.event(OrderPlaced(run, order_id, customer, items, total))
            log.info("order %s placed by %s, published to Kafka", order_id, customer)
            print(f"trace {span.trace_id} order {order_id}", flush=True)
    if not zt.flush(30):
        sys.exit("orders: could not hand every record to Kafka in time")


if __name__ == "__main__":
    main(*sys.argv[1:4])
