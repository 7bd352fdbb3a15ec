"""Zoom against the libraries users would pick instead, every case in one run, side by side.

    .venv/bin/python bench/run.py                     # default: ~5 min, 1 M and 10 M record stores
    .venv/bin/python bench/run.py --quick             # ~1-2 min, fewer repeats, 1 M record store
    .venv/bin/python bench/run.py --full              # more rounds and repeats, bigger ingest
    .venv/bin/python bench/run.py --smoke             # seconds: does everything still run? (tests)
    .venv/bin/python bench/run.py --json out.json --markdown out.md
    .venv/bin/python bench/run.py --kafka 127.0.0.1:19092   # adds Kafka -> collector -> store
    .venv/bin/python bench/run.py --start-kafka             # starts a broker for that (scripts/kafka-broker)

Peers are the ``bench`` extra (``pip install -e '.[bench]'``); a peer that is not installed is
reported as missing, not fatal. Every library runs in worker processes of its own
(bench/cases/worker.py), several rounds of them interleaved, so that slow drifts of the machine hit
every library alike; each worker takes several samples. Reported: the median over all samples and
the spread (IQR as % of the median, min..max). See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from cases.common import PAYLOAD_JSON_BYTES, machine_info, summarise  # noqa: E402

WORKER = BENCH / "cases" / "worker.py"
RESULT_SCHEMA = 1

#: library -> module that must be importable for it to run
LIB_MODULES = {
    "zoomtrace": "zoomtrace",
    "floor": "msgspec",
    "stdlib-json": "logging",
    "structlog": "structlog",
    "loguru": "loguru",
    "eliot": "eliot",
    "otel-sdk": "opentelemetry.sdk",
    "logfire": "logfire",
}
PEERS = ("stdlib-json", "structlog", "loguru", "eliot", "otel-sdk", "logfire")
MICRO_CASES = ("log", "span", "event", "stdlib", "threads8", "tasks1000")
CONCURRENT = ("threads8", "tasks1000")
CASE_TITLES = {
    "log": "1. Log record: template + 2 attrs, inside a span",
    "span": "2. Span start+end with 2 attrs",
    "event": f"3. Data event, {PAYLOAD_JSON_BYTES} B JSON payload",
    "stdlib": "4. stdlib logging.getLogger(...).info('charged %s for %s', ...): captured by Zoom vs JSON file handler",
    "threads8": "5a. Concurrency: 8 threads logging at once (µs per record, all threads)",
    "tasks1000": "5b. Concurrency: 1,000 asyncio tasks logging at once (µs per record, loop included)",
}
METRICS = ("caller_cpu_us", "caller_wall_us", "e2e_cpu_us", "e2e_wall_us")

MODES: dict[str, dict[str, Any]] = {
    "smoke": {
        "rounds": 1,
        "repeats": 1,
        "n": 200,
        "ingest_records": 3000,
        "ingest_repeats": 1,
        "query_sizes": [20_000],
        "query_repeats": 3,
        "burst": 20_000,
        "kafka_records": 3000,
    },
    "quick": {
        "rounds": 1,
        "repeats": 3,
        "budget_s": 0.15,
        "nmin": 2000,
        "nmax": 20_000,
        "ingest_records": 60_000,
        "ingest_repeats": 1,
        "query_sizes": [1_000_000],
        "query_repeats": 15,
        "burst": 200_000,
        "kafka_records": 60_000,
    },
    "default": {
        "rounds": 3,
        "repeats": 3,
        "budget_s": 0.3,
        "nmin": 5000,
        "nmax": 50_000,
        "ingest_records": 300_000,
        "ingest_repeats": 3,
        "query_sizes": [1_000_000, 10_000_000],
        "query_repeats": 30,
        "burst": 1_000_000,
        "kafka_records": 300_000,
    },
    "full": {
        "rounds": 5,
        "repeats": 5,
        "budget_s": 0.5,
        "nmin": 10_000,
        "nmax": 50_000,
        "ingest_records": 1_000_000,
        "ingest_repeats": 3,
        "query_sizes": [1_000_000, 10_000_000],
        "query_repeats": 50,
        "burst": 1_000_000,
        "kafka_records": 1_000_000,
    },
}


# -- running workers --------------------------------------------------------------------------------


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in list(env):
        # Nothing from the caller's environment may redirect a library (a Zoom sink, an OTLP endpoint,
        # a Logfire token: the benchmark sends nothing over the network).
        if key.startswith(("ZOOMTRACE_", "OTEL_", "LOGFIRE_")):
            del env[key]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), env.get("PYTHONPATH")]))
    return env


def run_worker(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(prefix="zt-bench-", suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        proc = subprocess.run(
            [sys.executable, str(WORKER), json.dumps(spec), str(out)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_worker_env(),
            cwd=tempfile.gettempdir(),
        )
        text = out.read_text() if out.exists() else ""
        if not text:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
            return {"error": f"worker exited {proc.returncode} without a result", "stderr": "\n".join(tail)}
        result: dict[str, Any] = json.loads(text)
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {timeout:.0f} s"}
    finally:
        out.unlink(missing_ok=True)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the cases --------------------------------------------------------------------------------------


def run_micro(libs: list[str], cases: list[str], cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    info: dict[str, dict[str, Any]] = {}
    setups: dict[str, str] = {}
    for rnd in range(cfg["rounds"]):
        order = libs[rnd % len(libs) :] + libs[: rnd % len(libs)]  # rotate: no library always goes first
        for lib in order:
            spec = {"job": "micro", "lib": lib, "cases": cases, "repeats": cfg["repeats"]}
            if cfg.get("n"):
                spec["n"] = cfg["n"]
            else:
                spec.update(budget_s=cfg["budget_s"], nmin=cfg["nmin"], nmax=cfg["nmax"])
            t = time.perf_counter()
            res = run_worker(spec, timeout=900)
            say(
                f"  round {rnd + 1}/{cfg['rounds']} {lib:<12} {time.perf_counter() - t:6.1f} s"
                + (f"  ERROR {res['error']}" if "error" in res else "")
            )
            if "error" in res:
                info.setdefault(lib, {}).setdefault("_errors", []).append(res["error"] + " " + res.get("stderr", ""))
                continue
            setups[lib] = res.get("setup", "")
            for case, r in res["cases"].items():
                slot = info.setdefault(lib, {}).setdefault(case, {"n": [], "lost": 0, "errors": []})
                if "error" in r:
                    slot["errors"].append(r["error"])
                    continue
                slot["n"].append(r["n"])
                slot["lost"] += r.get("lost", 0) or 0
                samples.setdefault(case, {}).setdefault(lib, []).extend(r["samples"])
    out: dict[str, Any] = {}
    for case in cases:
        rows: dict[str, Any] = {}
        for lib in libs:
            slot = info.get(lib, {}).get(case)
            got = samples.get(case, {}).get(lib, [])
            if slot is None and not got:
                continue
            row: dict[str, Any] = {"n": sorted(set(slot["n"])) if slot else [], "samples": len(got)}
            for metric in METRICS:
                if got:
                    row[metric] = {
                        k: round(v, 3) if isinstance(v, float) else v
                        for k, v in summarise([s[metric] for s in got]).items()
                    }
            if slot and slot["lost"]:
                row["lost"] = slot["lost"]
            if slot and slot["errors"]:
                row["errors"] = sorted(set(slot["errors"]))
            rows[lib] = row
        if rows:
            out[case] = rows
    for lib, slot in info.items():
        if "_errors" in slot:
            out.setdefault("_errors", {})[lib] = sorted(set(slot["_errors"]))
    return out, setups


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- reporting --------------------------------------------------------------------------------------


def _m(row: dict[str, Any], metric: str) -> float | None:
    value = row.get(metric, {}).get("median")
    return float(value) if value is not None else None


def headline(case: str, kind: str, clock: str) -> str:
    """The metric shown as 'caller' / 'end-to-end' for a case (concurrency cases have no one caller thread:
    their caller column stays empty)."""
    if kind == "caller":
        return "none" if case in CONCURRENT else f"caller_{clock}_us"
    return f"e2e_{clock}_us"


def fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def micro_table(micro: dict[str, Any], clock: str) -> list[str]:
    lines: list[str] = []
    for case in MICRO_CASES:
        rows = micro.get(case)
        if not rows:
            continue
        cm, em = headline(case, "caller", clock), headline(case, "e2e", clock)
        other = "e2e_wall_us" if clock == "cpu" else "e2e_cpu_us"
        zoom = _m(rows.get("zoomtrace", {}), em)
        lines.append(f"\n### {CASE_TITLES[case]}\n")
        lines.append(
            f"| library | caller µs | end-to-end µs | e2e {'wall' if clock == 'cpu' else 'CPU'} µs "
            "| spread (IQR %, min–max) | × zoomtrace | n × samples |"
        )
        lines.append("|---|---:|---:|---:|---|---:|---|")
        order = sorted(rows, key=lambda lib: (_m(rows[lib], em) is None, _m(rows[lib], em) or 0))
        for lib in order:
            row = rows[lib]
            if "errors" in row and em not in row:
                lines.append(f"| {lib} | error: {row['errors'][0][:80]} | | | | | |")
                continue
            e = row[em]
            ratio = _m(row, em) / zoom if zoom and lib != "zoomtrace" and _m(row, em) else None
            spread = f"{e['iqr_pct']:.0f} %, {e['min']:.2f}–{e['max']:.2f}"
            lost = f" (lost {row['lost']})" if row.get("lost") else ""
            lines.append(
                f"| {lib}{lost} | {fmt(_m(row, cm))} | **{fmt(_m(row, em))}** | {fmt(_m(row, other))} | "
                f"{spread} | {fmt(ratio, 1) + '×' if ratio else ''} | "
                f"{'/'.join(str(x) for x in row['n'])} × {row['samples']} |"
            )
    return lines


def evaluate_targets(res: dict[str, Any], clock: str) -> list[dict[str, Any]]:
    """The targets of issue 6, each as measured in this run (ratios against peers of this run)."""
    micro = res.get("micro", {})
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: str, ok: bool | None, detail: str = "") -> None:
        if value is None:  # not measured in this run
            return
        out.append(
            {
                "target": name,
                "measured": None if value is None else round(value, 2),
                "goal": goal,
                "met": ok,
                "detail": detail,
            }
        )

    def get(case: str, lib: str, kind: str) -> float | None:
        return _m(micro.get(case, {}).get(lib, {}), headline(case, kind, clock))

    log_e2e, log_caller = get("log", "zoomtrace", "e2e"), get("log", "zoomtrace", "caller")
    add("log end-to-end µs", log_e2e, "≤ 6", None if log_e2e is None else log_e2e <= 6)
    peers = {lib: get("log", lib, "e2e") for lib in PEERS}
    peers = {k: v for k, v in peers.items() if v is not None}
    if peers and log_e2e:
        fastest = min(peers, key=lambda k: peers[k])
        ratio = peers[fastest] / log_e2e
        add(
            "log e2e: × faster than the fastest peer",
            ratio,
            "≥ 2",
            ratio >= 2,
            f"fastest peer {fastest} {peers[fastest]:.2f} µs",
        )
    if "stdlib-json" in peers and log_e2e:
        ratio = peers["stdlib-json"] / log_e2e
        add("log e2e: × faster than stdlib JSON file handler", ratio, "≥ 4", ratio >= 4)
    add("log caller µs", log_caller, "≤ 2.5", None if log_caller is None else log_caller <= 2.5)
    span_caller, span_e2e = get("span", "zoomtrace", "caller"), get("span", "zoomtrace", "e2e")
    add("span caller µs", span_caller, "≤ 5", None if span_caller is None else span_caller <= 5)
    otel_e2e, otel_caller = get("span", "otel-sdk", "e2e"), get("span", "otel-sdk", "caller")
    if otel_e2e and span_e2e:
        add(
            "span e2e: × faster than OpenTelemetry SDK",
            otel_e2e / span_e2e,
            "≥ 20",
            otel_e2e / span_e2e >= 20,
            f"otel-sdk {otel_e2e:.2f} µs end-to-end",
        )
    if otel_caller and span_caller:
        add(
            "span caller: × faster than OpenTelemetry SDK",
            otel_caller / span_caller,
            "≥ 20",
            otel_caller / span_caller >= 20,
            f"otel-sdk {otel_caller:.2f} µs caller",
        )
    cap, base = get("stdlib", "zoomtrace", "e2e"), get("stdlib", "stdlib-json", "e2e")
    if cap and base:
        add(
            "stdlib captured by Zoom / stdlib JSON handler alone (e2e)",
            cap / base,
            "≤ 1",
            cap / base <= 1,
            f"{cap:.2f} vs {base:.2f} µs",
        )
    ing = res.get("ingest", {})
    if "records_per_s" in ing:
        add(
            "ingest spool → DuckDB records/s (wall)",
            ing["records_per_s"],
            "≥ 250,000",
            ing["records_per_s"] >= 250_000,
            f"{ing['records_per_cpu_s']:,} records per CPU-second",
        )
    kafka = res.get("kafka", {})
    if kafka.get("records_per_s"):
        add(
            "Kafka → collector → store records/s",
            kafka["records_per_s"],
            "≥ 100,000",
            kafka["records_per_s"] >= 100_000,
        )
    sizes = res.get("query", {}).get("sizes", {})
    if sizes:
        biggest = max(sizes, key=int)
        p50 = sizes[biggest]["story"]["p50_ms"]
        add(f"story p50 ms at {int(biggest) / 1e6:g} M records", p50, "≤ 50 (at 10 M)", p50 <= 50)
    mem = res.get("memory", {})
    if "init_added_mb" in mem:
        add(
            "zt.init() RSS added MB",
            mem["init_added_mb"],
            "≤ 15",
            mem["init_added_mb"] <= 15,
            f"import zoomtrace adds {mem['import_added_mb']} MB more",
        )
        add(
            "burst: peak RSS added MB (queue bound holds)",
            mem["burst_peak_added_mb"],
            "bounded",
            bool(mem.get("accounted")) and mem.get("queue_len_after_burst", 0) <= mem["queue_bound"],
            f"{mem['burst_records']:,} records, {mem['written']:,} written, lost {mem['lost']}",
        )
    return out


def report(res: dict[str, Any]) -> str:
    clock = res["settings"]["clock"]
    m = res["machine"]
    lines = [
        f"# zoomtrace benchmark ({res['mode']} mode, {res['started_utc']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['platform']}; Python {m['python']}; "
        f"load average at start {m['load_average_at_start']}; zoomtrace commit "
        f"{(m['repo']['commit'] or '?')[:10]}{' (dirty)' if m['repo']['dirty'] else ''}.",
        f"Clock: **{clock}** (caller = the calling thread's {'CPU time' if clock == 'cpu' else 'wall time'}, "
        f"end-to-end = {'CPU time of the whole process' if clock == 'cpu' else 'wall time'} until everything is "
        "written). Medians over all samples; lower is better; × zoomtrace = that library's end-to-end ÷ Zoom's.",
    ]
    lines += micro_table(res.get("micro", {}), clock)
    errors = res.get("micro", {}).get("_errors")
    if errors:
        lines.append("\nWorker errors: " + "; ".join(f"{k}: {v[0][:200]}" for k, v in errors.items()))
    ing, kafka = res.get("ingest"), res.get("kafka")
    if ing or kafka:
        lines.append("\n### 6. Ingest\n")
        lines.append("| path | records | records/s (wall) | min–max | records per CPU-second | note |")
        lines.append("|---|---:|---:|---|---:|---|")
        if ing and "error" in ing:
            lines.append(f"| spool → DuckDB | error: {ing['error'][:100]} | | | | |")
        elif ing:
            lines.append(
                f"| spool → DuckDB | {ing['records']:,} | **{ing['records_per_s']:,}** | "
                f"{ing['records_per_s_min']:,}–{ing['records_per_s_max']:,} | {ing['records_per_cpu_s']:,} | "
                f"spool {ing['spool_mb']} MB |"
            )
        if kafka:
            if "error" in kafka or "skipped" in kafka:
                lines.append(f"| Kafka → collector → store | {kafka.get('error') or kafka.get('skipped')} | | | | |")
            else:
                lines.append(
                    f"| Kafka → collector → store | {kafka['stored']:,} | "
                    f"**{kafka.get('records_per_s', 0):,}** | | | steady state over {kafka['batches']} "
                    f"batches; the store write is "
                    f"{kafka.get('store_share')} of the time |"
                )
    q = res.get("query")
    if q:
        lines.append("\n### 7. Query (synthesised store, warm session)\n")
        if "error" in q:
            lines.append(f"error: {q['error']}")
        else:
            lines.append(
                "| stored records | story p50 ms | story p95 ms | first ms | new session ms "
                "| traces page (service) p50/p95 ms | traces page (errors) p50/p95 ms | build s |"
            )
            lines.append("|---:|---:|---:|---:|---:|---|---|---:|")
            for _n, r in sorted(q["sizes"].items(), key=lambda kv: int(kv[0])):
                s, ts, te = r["story"], r["traces_page_service"], r["traces_page_errors"]
                lines.append(
                    f"| {r['records']:,} | **{s['p50_ms']}** | {s['p95_ms']} | {s['first_ms']} | "
                    f"{r['story_new_session_ms']} | {ts['p50_ms']} / {ts['p95_ms']} | "
                    f"{te['p50_ms']} / {te['p95_ms']} | {r['build_s']} |"
                )
    mem = res.get("memory")
    if mem:
        lines.append("\n### 8. Memory\n")
        if "error" in mem:
            lines.append(f"error: {mem['error']}")
        else:
            lines.append(
                f"- `import zoomtrace`: +{mem['import_added_mb']} MB RSS; `zt.init()`: "
                f"+{mem['init_added_mb']} MB (together +{mem['import_and_init_added_mb']} MB over a "
                f"{mem['python_baseline_mb']} MB interpreter)"
            )
            lines.append(
                f"- burst of {mem['burst_records']:,} `zt.log.info` from one thread "
                f"({mem['burst_caller_s']} s): peak RSS +{mem['burst_peak_added_mb']} MB, "
                f"queue bound {mem['queue_bound']:,} held "
                f"(length {mem['queue_len_after_burst']:,} after the burst), {mem['written']:,} written, "
                f"lost {mem['lost']} (counted and recorded), drained in {mem['burst_drain_s']} s"
            )
    targets = res.get("targets", [])
    if targets:
        lines.append("\n### Targets (issue 6), this run\n")
        lines.append("| target | measured | goal | met | detail |")
        lines.append("|---|---:|---|---|---|")
        for t in targets:
            met = "—" if t["met"] is None else ("yes" if t["met"] else "**no**")
            lines.append(f"| {t['target']} | {t['measured']} | {t['goal']} | {met} | {t['detail']} |")
    lines.append(f"\nRun took {res['duration_s']:.0f} s: `{res['command']}`")
    return "\n".join(lines) + "\n"


# -- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick")
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    mode.add_argument("--smoke", action="store_const", dest="mode", const="smoke")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--markdown", type=Path, help="write the report (markdown tables) here")
    p.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="run nothing: print (and --markdown/--readme) the report of an earlier --json file",
    )
    p.add_argument(
        "--readme", action="store_true", help="also put the report into bench/README.md (between its results markers)"
    )
    p.add_argument("--rounds", type=int, help="worker processes per library (interleaved)")
    p.add_argument("--repeats", type=int, help="samples per case in each worker process")
    p.add_argument("--libs", help=f"comma-separated subset of {','.join(LIB_MODULES)}")
    p.add_argument("--cases", help=f"comma-separated subset of {','.join(MICRO_CASES)}")
    p.add_argument("--only", help="comma-separated subset of micro,ingest,query,memory,kafka")
    p.add_argument("--query-sizes", help="stored records for the query case, e.g. 1000000,10000000")
    p.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="headline clock: cpu (default; robust to other load) or wall",
    )
    kafka = p.add_mutually_exclusive_group()
    kafka.add_argument("--kafka", metavar="HOST:PORT", help="run the Kafka ingest case against this broker")
    kafka.add_argument("--start-kafka", action="store_true", help="start a broker (scripts/kafka-broker) for it")
    args = p.parse_args(argv)
    if args.from_json:
        text = report(json.loads(args.from_json.read_text()))
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
        if args.readme:
            update_readme(text)
        return 0

    mode_name = args.mode or "default"
    cfg = dict(MODES[mode_name])
    if args.rounds:
        cfg["rounds"] = args.rounds
    if args.repeats:
        cfg["repeats"] = args.repeats
    if args.query_sizes:
        cfg["query_sizes"] = [int(x) for x in args.query_sizes.split(",")]
    only = set(args.only.split(",")) if args.only else {"micro", "ingest", "query", "memory", "kafka"}
    wanted = args.libs.split(",") if args.libs else list(LIB_MODULES)
    cases = args.cases.split(",") if args.cases else list(MICRO_CASES)
    missing = [lib for lib in wanted if importlib.util.find_spec(LIB_MODULES[lib]) is None]
    libs = [lib for lib in wanted if lib not in missing]

    started = time.time()
    res: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "mode": mode_name,
        "command": " ".join([Path(sys.executable).name, "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "started_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "settings": {
            **cfg,
            "clock": args.clock,
            "libs": libs,
            "missing_libs": missing,
            "cases": cases,
            "payload_json_bytes": PAYLOAD_JSON_BYTES,
        },
    }
    if missing:
        say(f"not installed (pip install -e '.[bench]'): {', '.join(missing)}")

    if "micro" in only:
        say(f"per-record cases: {', '.join(libs)} × {cfg['rounds']} rounds")
        res["micro"], res["libs"] = run_micro(libs, cases, cfg)
    if "ingest" in only:
        say(f"ingest: spool -> DuckDB, {cfg['ingest_records']:,} records")
        res["ingest"] = run_worker(
            {"job": "ingest", "records": cfg["ingest_records"], "repeats": cfg["ingest_repeats"]}, timeout=1800
        )
    broker = None
    bootstrap = args.kafka
    if "kafka" in only and args.start_kafka:
        sys.path.insert(0, str(REPO))
        from tests.support.kafka_broker import KafkaBroker

        port = _free_port()
        broker = KafkaBroker(
            port=port, data_dir=Path(tempfile.mkdtemp(prefix="zt-bench-kafka-")), controller_port=_free_port()
        )
        say(f"starting a Kafka broker on 127.0.0.1:{port}")
        try:
            bootstrap = broker.start()
        except RuntimeError as exc:
            res["kafka"] = {"error": f"broker did not start: {str(exc)[:300]}"}
            broker = None
    try:
        if "kafka" in only and bootstrap:
            say(f"ingest: Kafka {bootstrap} -> collector -> store, {cfg['kafka_records']:,} records")
            res["kafka"] = run_worker(
                {"job": "kafka", "bootstrap": bootstrap, "records": cfg["kafka_records"]}, timeout=1800
            )
        elif "kafka" in only and "kafka" not in res:
            res["kafka"] = {"skipped": "no broker: pass --kafka HOST:PORT or --start-kafka"}
    finally:
        if broker is not None:
            broker.stop()
            shutil.rmtree(broker.dir, ignore_errors=True)
    if "query" in only:
        say(f"query: story and traces page at {', '.join(f'{n:,}' for n in cfg['query_sizes'])} records")
        res["query"] = run_worker(
            {"job": "query", "sizes": cfg["query_sizes"], "repeats": cfg["query_repeats"]}, timeout=3600
        )
    if "memory" in only:
        say(f"memory: init, burst of {cfg['burst']:,}")
        res["memory"] = run_worker({"job": "memory", "records": cfg["burst"]}, timeout=1800)

    res["duration_s"] = round(time.time() - started, 1)
    res["targets"] = evaluate_targets(res, args.clock)
    text = report(res)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    if args.readme:
        update_readme(text)
    return 0


README = BENCH / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(text: str) -> None:
    """Replace the results section of bench/README.md with ``text`` (its title as a bold line)."""
    body = "\n".join((f"**{line[2:]}**" if line.startswith("# ") else line) for line in text.splitlines())
    readme = README.read_text()
    start, end = readme.index(START) + len(START), readme.index(END)
    README.write_text(readme[:start] + "\n" + body + "\n" + readme[end:])


if __name__ == "__main__":
    sys.exit(main())
