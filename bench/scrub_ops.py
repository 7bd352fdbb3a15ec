"""What the scrubber costs on the pipeline's worker, per call, against another revision of scrub.py.

    PYTHONPATH=src .venv/bin/python bench/scrub_ops.py [--against REV] [--repeat 9]

``--against REV`` loads ``src/zoomtrace/runtime/scrub.py`` as it was at ``REV`` (git show) beside the
current one, and times both on the same inputs, in alternating rounds, so a busy machine slows both
alike. Best-of-N timings of tight loops (``timeit``): a lower bound, for comparing, not for budgets.
Inputs that vary in reality (message ids, UUIDs) cycle through distinct values so that no cache
of the scrubber answers from a previous call.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import subprocess
import sys
import tempfile
import timeit
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from cases.common import order_payload  # noqa: E402


def _module_at(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(BENCH.parent), "show", f"{rev}:src/zoomtrace/runtime/scrub.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="zt-scrub-")) / "scrub_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("scrub_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def costs(fns: list[Any], repeat: int) -> list[float]:
    """µs per call of each of ``fns``, best of ``repeat`` rounds of ~20 ms each; the rounds alternate
    between the functions, so that a busy machine slows them alike."""
    timers = [timeit.Timer(fn) for fn in fns]
    numbers = []
    for timer in timers:
        n, t = 1, 0.0
        while t < 0.005:
            n *= 4
            t = timer.timeit(n)
        numbers.append(max(1, int(n * 0.02 / t)))
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, timer in enumerate(timers):
            best[i] = min(best[i], timer.timeit(numbers[i]) / numbers[i])
    return [b * 1e6 for b in best]


def cases(scrubber: Any) -> list[tuple[str, Any]]:
    ids = [str(uuid.uuid4()) for _ in range(5000)]
    id_messages = itertools.cycle([f"consumed message {u} from orders" for u in ids])
    id_attrs = itertools.cycle(
        [{"messaging.system": "kafka", "messaging.message.id": u, "messaging.destination.name": "orders"} for u in ids]
    )
    payload = order_payload()
    payload_text = str(payload)
    text, attrs, value = scrubber.scrub_text, scrubber.scrub_attrs, scrubber.scrub_value
    return [
        ("scrub_text  'charged 12.5 for 7' (the common message)", lambda: text("charged 12.5 for 7")),
        (
            "scrub_text  'GET /api/v1/items?page=2&limit=10 status=200 user=alice'",
            lambda: text("GET /api/v1/items?page=2&limit=10 status=200 user=alice"),
        ),
        (
            "scrub_text  'inside the shipping step: 3 items, design=v2' (look-alike words)",
            lambda: text("inside the shipping step: 3 items, design=v2"),
        ),
        ("scrub_text  'login user=bob password=x ok' (a secret)", lambda: text("login user=bob password=x ok")),
        ("scrub_text  'consumed message <uuid4> from orders' (distinct ids)", lambda: text(next(id_messages))),
        ("scrub_text  'paid with 4111 1111 1111 1111' (a card)", lambda: text("paid with 4111 1111 1111 1111")),
        ("scrub_attrs {'amount': 12.5, 'order': 7}", lambda: attrs({"amount": 12.5, "order": 7})),
        ("scrub_attrs messaging attrs, distinct message ids", lambda: attrs(next(id_attrs))),
        ("scrub_value the 1 KB order payload", lambda: value(payload)),
        ("scrub_text  the 1 KB order payload's repr", lambda: text(payload_text)),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", metavar="REV", help="also time scrub.py as it was at this git revision")
    p.add_argument("--repeat", type=int, default=15)
    args = p.parse_args()

    from zoomtrace.runtime import scrub as now

    sides = [("now", now)]
    if args.against:
        sides.insert(0, (args.against, _module_at(args.against)))
    built = [(name, cases(module.Scrubber())) for name, module in sides]
    header = "".join(f"{name:>12}" for name, _ in sides)
    print(f"{'µs per call':<72}{header}")
    for i, (label, _) in enumerate(built[0][1]):
        row = "".join(f"{us:12.3f}" for us in costs([side[i][1] for _, side in built], args.repeat))
        print(f"{label:<72}{row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
