"""Orders: places an order, then charges it through billing, retrying a declined payment once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import zoomtrace as zt
from zoomtrace.demo.http import port_arg, post, serve

log = logging.getLogger("orders")
BILLING = f"http://127.0.0.1:{port_arg('billing-port')}/charge"


@dataclass
class OrderPlaced:
    order_id: int
    customer: str
    items: list[str] = field(default_factory=list)
    total: float = 0.0


def place(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    order = OrderPlaced(body["order_id"], body["customer"], body["items"], body["total"])
    order_event = zt.event(order)
    log.info("order %s placed by %s: %d items", order.order_id, order.customer, len(order.items))
    request = {
        "order_id": order.order_id,
        "amount": order.total,
        "order_event": order_event,
        "flaky": body.get("flaky", False),
    }
    with zt.span("charge", attempt=1) as first:
        status, reply = post(BILLING, request)
        first.set(attrs={"http.response.status_code": status})
    if status == 402:
        log.warning("payment for order %s declined, retrying once", order.order_id)
        with zt.span("charge.retry", follows_from=first, attempt=2) as retry:
            status, reply = post(BILLING, request)
            retry.set(attrs={"http.response.status_code": status})
    if status != 200:
        log.error("order %s could not be charged: %s", order.order_id, reply.get("error"))
        return 502, {"error": "payment failed"}
    zt.log.info("order {order_id} confirmed", order_id=order.order_id, payment_event=reply["payment_event"])
    return 201, {"order_event": order_event, "payment_event": reply["payment_event"]}


if __name__ == "__main__":
    zt.init("orders", env="demo", group="shop", version="2.0.1", span_cpu=True)
    serve({"/orders": place})
