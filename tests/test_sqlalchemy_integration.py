"""SQLAlchemy: a span per statement, under the span that ran it (issue 14, item 4).

A real child process runs Core, ORM and plain driver SQL against a real SQLite database file;
the spans are read back through the real CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import PY, all_spans, cli, cli_json, marker_line, result, run_script, story, write_files

APP = """
import json
import sys

from sqlalchemy import create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import zoomtrace as zt
from zoomtrace.integrations import sqlalchemy as zt_sqlalchemy

zt.init("orders", env="ci")
zt_sqlalchemy.instrument()  # every engine, this one created afterwards
engine = create_engine(f"sqlite:///{sys.argv[1]}")


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


with zt.span("setup"):
    Base.metadata.create_all(engine)

with zt.span("checkout") as checkout, engine.begin() as conn:
    conn.execute(text("INSERT INTO customers (name) VALUES (:name)"), [{"name": "ann"}, {"name": "bob"}])  # @many
    found = conn.execute(text("SELECT id FROM customers WHERE name = :name"), {"name": "top-secret-ann"})  # @select
    found.all()
    conn.execute(text("UPDATE customers SET name = upper(name)"))  # @update
    conn.exec_driver_sql("SELECT count(*) FROM customers").scalar()  # @driver
    try:
        conn.execute(text("SELECT * FROM no_such_table"))  # @missing
    except Exception as exc:
        error = type(exc).__name__

with zt.span("orm") as orm, Session(engine) as session:
    names = [c.name for c in session.query(Customer).order_by(Customer.name)]  # @orm

other = create_engine(f"sqlite:///{sys.argv[1]}")
zt_sqlalchemy.instrument(other, parameters=True)  # this one with parameter values, and not traced twice
with zt.span("asked") as asked, other.connect() as conn:
    query = text("SELECT name FROM customers WHERE id = :id AND name != :password")
    conn.execute(query, {"id": 2, "password": "hunter2"}).all()  # @asked
print("RESULT " + json.dumps({"traces": [checkout.trace_id, orm.trace_id, asked.trace_id], "error": error,
                              "names": names}), flush=True)
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("sqlalchemy")
    write_files(base, {"app.py": APP})
    home = base / "home"
    out = result(run_script(base / "app.py", home, str(base / "shop.db")))
    assert out["error"] == "OperationalError" and out["names"] == ["ANN", "BOB"]
    out["stories"] = [story(home, trace_id) for trace_id in out["traces"]]
    out["app"] = base / "app.py"
    out["db"] = str(base / "shop.db")
    return out


def statements(st: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The story's one root span and the statement spans right under it."""
    (root,) = st["spans"]
    assert all(span["attrs"].get("span.kind") == "client" for span in root["children"])
    return root, root["children"]


def test_each_statement_is_a_client_span_under_the_span_that_ran_it(ran: dict[str, Any]) -> None:
    root, spans = statements(ran["stories"][0])
    assert root["name"] == "checkout"
    assert [s["name"] for s in spans] == ["INSERT", "SELECT", "UPDATE", "SELECT", "SELECT"]
    lines = [marker_line(ran["app"], m) for m in ("many", "select", "update", "driver", "missing")]
    assert [(Path(s["code"]["file"]).name, s["code"]["line"]) for s in spans] == [("app.py", n) for n in lines]
    for span in spans:
        attrs = span["attrs"]
        assert attrs["db.system.name"] == "sqlite" and attrs["db.namespace"] == ran["db"]
        assert attrs["db.operation.name"] == span["name"]
        assert span["end_ns"] >= span["start_ns"]
    many, select, update, driver, _ = (s["attrs"] for s in spans)
    assert many["db.query.text"] == "INSERT INTO customers (name) VALUES (?)" and many["db.operation.batch.size"] == 2
    assert select["db.query.text"] == "SELECT id FROM customers WHERE name = ?"
    assert update["db.response.affected_rows"] == 2
    assert driver["db.query.text"] == "SELECT count(*) FROM customers"


def test_parameter_values_are_left_out_unless_asked(ran: dict[str, Any]) -> None:
    _, spans = statements(ran["stories"][0])
    assert not [k for s in spans for k in s["attrs"] if k.startswith("db.query.parameter")]
    assert "top-secret-ann" not in str(ran["stories"][0])
    _, (asked,) = statements(ran["stories"][2])  # one span although instrumented for every engine and this one
    assert asked["attrs"]["db.query.parameter.id"] == 2
    assert asked["attrs"]["db.query.parameter.password"] == "[scrubbed]"  # asked for, but a secret's name
    assert "hunter2" not in str(ran["stories"][2])
    assert asked["code"]["line"] == marker_line(ran["app"], "asked")


def test_a_failed_statement_is_an_error_span(ran: dict[str, Any]) -> None:
    _, spans = statements(ran["stories"][0])
    missing = spans[-1]
    assert missing["status"] == "error" and missing["attrs"]["error.type"] == "OperationalError"
    assert "no such table" in missing["error"]["message"]
    assert [s["status"] for s in spans[:-1]] == ["ok"] * 4


def test_orm_queries_point_at_the_application_line(ran: dict[str, Any]) -> None:
    root, (query,) = statements(ran["stories"][1])
    assert root["name"] == "orm" and query["name"] == "SELECT"
    assert "FROM customers ORDER BY customers.name" in query["attrs"]["db.query.text"]
    assert query["code"]["line"] == marker_line(ran["app"], "orm")
    assert len(all_spans(ran["stories"][1])) == 2


PLAIN_SCRIPT = """
import sys

from sqlalchemy import create_engine, text

engine = create_engine(f"sqlite:///{sys.argv[1]}")
with engine.connect() as conn:
    print(conn.execute(text("SELECT :n * 2"), {"n": 21}).scalar())  # @plain
"""


def test_zoomtrace_run_traces_an_engine_with_no_zoom_in_the_program(tmp_path: Path) -> None:
    write_files(tmp_path, {"plain.py": PLAIN_SCRIPT})
    home = tmp_path / "home"
    done = cli(home, "run", "--", PY, "plain.py", str(tmp_path / "plain.db"), cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "42\n", done.stderr
    (span,) = [r for r in cli_json(home, "tail") if r["kind"] == "span"]
    assert span["attrs"]["db.query.text"] == "SELECT ? * 2" and span["attrs"]["db.system.name"] == "sqlite"
    assert span["code"]["line"] == marker_line(tmp_path / "plain.py", "plain")


ASYNC_APP = """
import asyncio
import json
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import zoomtrace as zt
from zoomtrace.integrations import sqlalchemy as zt_sqlalchemy

zt.init("orders-async", env="ci")


async def main():
    engine = create_async_engine(f"sqlite+aiosqlite:///{sys.argv[1]}")
    zt_sqlalchemy.instrument(engine)  # an async engine: its statements run in SQLAlchemy's greenlets
    with zt.span("lookup") as span:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT :n + 1"), {"n": 1})  # @async_select
    await engine.dispose()
    return span


span = asyncio.run(main())
print("RESULT " + json.dumps({"trace_id": span.trace_id}), flush=True)
"""


def test_asyncio_statements_are_spans_under_the_awaiting_span(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": ASYNC_APP})
    home = tmp_path / "home"
    ran = result(run_script(tmp_path / "app.py", home, str(tmp_path / "async.db")))
    root, (select,) = statements(story(home, ran["trace_id"]))
    assert root["name"] == "lookup" and select["name"] == "SELECT"
    assert select["attrs"]["db.query.text"] == "SELECT ? + 1" and select["attrs"]["db.system.name"] == "sqlite"
    # The application's await, found past the greenlet SQLAlchemy ran the statement in.
    assert (select["code"]["function"], select["code"]["line"]) == (
        "main",
        marker_line(tmp_path / "app.py", "async_select"),
    )
