"""Billing: captures payments; the first attempt for a flagged order is declined."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import zoomtrace as zt
from zoomtrace.demo.http import serve

log = logging.getLogger("billing")


class PaymentDeclined(Exception):
    pass


@dataclass
class PaymentCaptured:
    order_id: int
    amount: float
    currency: str = "EUR"


_declined_once: set[int] = set()


@zt.traced("capture_payment")
def capture(order_id: int, amount: float, flaky: bool) -> PaymentCaptured:
    if flaky and order_id not in _declined_once:
        _declined_once.add(order_id)
        raise PaymentDeclined(f"card declined for order {order_id} (issuer timeout)")
    log.info("captured %.2f EUR for order %s", amount, order_id)
    return PaymentCaptured(order_id, amount)


def charge(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        payment = capture(body["order_id"], body["amount"], body.get("flaky", False))
    except PaymentDeclined as exc:
        log.warning("payment declined: %s", exc)
        return 402, {"error": str(exc)}
    event_id = zt.event(payment, sources=[body["order_event"]])
    return 200, {"payment_event": event_id}


if __name__ == "__main__":
    zt.init("billing", env="demo", group="shop", version="1.4.2", span_cpu=True)
    serve({"/charge": charge})
