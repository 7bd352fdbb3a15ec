"""`zoomtrace demo --kafka`: one trace across producer, broker hop and consumer, with lineage (real broker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.kafka_broker import KafkaBroker


def walk(spans: list[dict], parent: dict | None = None):
    for span in spans:
        yield span, parent
        yield from walk(span["children"], span)


@pytest.mark.kafka
def test_kafka_demo_tells_one_story_across_the_broker(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = subprocess.run(
        [sys.executable, "-m", "zoomtrace", "--home", str(home), "demo", "--kafka", kafka_broker.bootstrap, "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    story = json.loads(out.stdout)
    spans = {s["name"]: (s, p) for s, p in walk(story["spans"])}
    producer, _ = spans["place_order"]
    consumer, consumer_parent = spans["charge_order"]
    assert (producer["service"], consumer["service"]) == ("orders", "billing")
    assert consumer_parent is producer  # the trace continued through Kafka's headers
    assert consumer["node_id"] != producer["node_id"]
    assert consumer["attrs"]["messaging.system"] == "kafka"
    assert consumer["attrs"]["messaging.destination.name"].endswith(".shop.event")
    placed = [r for r in producer["records"] if r["kind"] == "event"]
    captured = [r for r in consumer["records"] if r["kind"] == "event"]
    assert [r["type"] for r in placed] == ["OrderPlaced"]
    assert [r["type"] for r in captured] == ["PaymentCaptured"]
    assert captured[0]["sources"] == [placed[0]["id"]]
    assert captured[0]["payload"]["amount"] == placed[0]["payload"]["total"]
    assert {n["service"] for n in story["nodes"]} == {"orders", "billing"}
    assert all(n["stop_cause"] == "exit" for n in story["nodes"])


@pytest.mark.kafka
def test_kafka_demo_stores_into_the_store_it_is_given(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    """``--store chdb://DIR``: the collector writes there, and the story told is the one stored there."""
    home, store = tmp_path / "home", f"chdb://{tmp_path / 'store'}"
    zoomtrace = [sys.executable, "-m", "zoomtrace", "--home", str(home), "--store", store]
    out = subprocess.run(
        [*zoomtrace, "demo", "--kafka", kafka_broker.bootstrap, "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    story = json.loads(out.stdout)
    assert {n["service"] for n in story["nodes"]} == {"orders", "billing"}
    assert {s["name"] for s, _ in walk(story["spans"])} >= {"place_order", "charge_order"}
    assert not (home / "store.duckdb").exists()
    again = subprocess.run(
        [*zoomtrace, "story", story["trace_id"], "--json"], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(again.stdout) == story
