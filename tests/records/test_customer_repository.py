"""The customer repository on a real SQLite file: the lookups other parts use (``get``, ``plan_of``)
and the If-Match check, which holds when writers race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from supportlens.auth.repository import NotFound
from supportlens.records.customer_model import CustomerChanges, NewCustomer
from supportlens.records.customers import CustomerRepository, PreconditionFailed
from supportlens.records.schemas import SchemaRegistry

WS = "ws1"


@pytest.fixture
def customers(tmp_path: Path) -> Iterator[CustomerRepository]:
    schemas = SchemaRegistry(tmp_path / "metadata.sqlite")
    repository = CustomerRepository(tmp_path / "metadata.sqlite", schemas)
    try:
        yield repository
    finally:
        repository.close()
        schemas.close()


def test_lookups(customers: CustomerRepository) -> None:
    customers.create(WS, NewCustomer(id="cust_1", name="Acme", email="a@acme.example", plan="enterprise"))
    customers.create(WS, NewCustomer(id="cust_2", name="Globex", email="g@globex.example"))

    assert customers.get(WS, "cust_1").plan == "enterprise"
    assert customers.plan_of(WS, "cust_1") == "enterprise"
    assert customers.plan_of(WS, "cust_2") is None  # no plan
    assert customers.plan_of(WS, "cust_unknown") is None
    assert customers.plan_of("ws2", "cust_1") is None
    with pytest.raises(NotFound, match="no customer 'cust_1' in this workspace"):
        customers.get("ws2", "cust_1")


def test_of_racing_writers_holding_the_same_version_one_wins(customers: CustomerRepository) -> None:
    customers.create(WS, NewCustomer(id="cust_1", name="Acme", email="a@acme.example"))
    writers = 8
    start = threading.Barrier(writers)
    outcomes: list[str] = []

    def write(number: int) -> None:
        start.wait()
        try:
            customers.update(WS, "cust_1", CustomerChanges(company=f"Acme {number}"), expected_versions={1})
        except PreconditionFailed as exc:
            outcomes.append(f"stale at {exc.current_version}")
        else:
            outcomes.append("written")

    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["stale at 2"] * (writers - 1) + ["written"]
    assert customers.get(WS, "cust_1").version == 2
