"""Gateway: the customer-facing entry point that places a few orders and exits."""

from __future__ import annotations

import logging
import sys

import zoomtrace as zt
from zoomtrace.demo.http import port_arg, post

log = logging.getLogger("gateway")
ORDERS = f"http://127.0.0.1:{port_arg('orders-port')}/orders"

CARTS = [
    ("ada", ["keyboard"], 89.0, False),
    ("grace", ["monitor", "cable"], 240.5, True),  # the payment is declined once, then retried
    ("linus", ["laptop stand"], 35.0, False),
]


def carts() -> list[tuple[str, list[str], float, bool]]:
    """The demo's three carts, or with ``--orders N`` N plain ones of different totals."""
    if "--orders" not in sys.argv:
        return CARTS
    return [("ada", ["cable"], 10.0 + n, False) for n in range(int(port_arg("orders")))]


def main() -> None:
    zt.init("gateway", env="demo", group="shop", version="0.9.0", span_cpu=True)
    for order_id, (customer, items, total, flaky) in enumerate(carts(), start=1):
        with zt.span("checkout", on_behalf_of=customer, customer=customer) as s:
            log.info("checkout for %s", customer)
            status, _reply = post(
                ORDERS, {"order_id": order_id, "customer": customer, "items": items, "total": total, "flaky": flaky}
            )
            s.set(attrs={"http.response.status_code": status})
            print(f"trace {s.trace_id} order {order_id} -> {status}", flush=True)


if __name__ == "__main__":
    main()
