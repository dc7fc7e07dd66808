"""A living source: seeded OLTP activity on Pagila (rentals, returns, payments, changes, deletes).

Same seed, same statements: every choice comes from a seeded random generator and from
deterministic queries (ORDER BY ... OFFSET), and business timestamps come from a simulated
clock that starts just after the source's latest rental or payment. Only the columns that
Pagila's own triggers set to now() (last_update) differ between two runs.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from medallion.db import connect
from medallion.sqlfiles import sql_text

KINDS = {  # transaction kind -> weight
    "rent": 35,
    "return": 25,
    "customer_change": 15,
    "film_change": 10,
    "new_customer": 5,
    "payment_delete": 5,
    "late_fee": 5,
}
RATES = ("0.99", "2.99", "4.99")
RATINGS = ("G", "PG", "PG-13", "R", "NC-17")
_Q = "pagila_example"


@dataclass
class SimulationReport:
    transactions: int = 0
    seconds: float = 0.0
    kinds: Counter = field(default_factory=Counter)
    partitions_created: list[str] = field(default_factory=list)
    clock_end: datetime | None = None


class Simulator:
    """Runs one kind of transaction at a time against the source, each in its own transaction."""

    def __init__(self, conn: psycopg.Connection, seed: int) -> None:
        self.conn = conn
        self.rng = random.Random(seed)
        self.clock: datetime = conn.execute(sql_text(_Q, "sim_clock.sql")).fetchone()[0]
        conn.commit()
        self.report = SimulationReport()

    def _q(self, name: str, params: dict | None = None) -> psycopg.Cursor:
        return self.conn.execute(sql_text(_Q, name), params or {})

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=round(self.rng.expovariate(1 / 90)) + 1)
        return self.clock

    def step(self) -> str:
        kinds, weights = zip(*KINDS.items())
        kind = self.rng.choices(kinds, weights)[0]
        at = self._tick()
        with self.conn.transaction():
            getattr(self, f"_{kind}")(at)
        self.report.kinds[kind] += 1
        self.report.transactions += 1
        self.report.clock_end = self.clock
        return kind

    # -- kinds of transaction --------------------------------------------------------------------

    def _counts(self) -> dict[str, int]:
        cur = self._q("sim_counts.sql")
        return dict(zip([c.name for c in cur.description], cur.fetchone()))

    def _rent(self, at: datetime) -> None:
        customers = self._counts()["customers"]
        customer_id, store_id = self._q("sim_pick_customer.sql", {"offset": self.rng.randrange(customers)}).fetchone()
        wanted = self.rng.choice((1, 1, 2, 3))
        items = self._q("sim_pick_inventory.sql", {"store_id": store_id, "offset": self.rng.randrange(200),
                                                   "limit": wanted}).fetchall()
        if not items:  # fewer items on the shelf than the offset: take the first ones
            items = self._q("sim_pick_inventory.sql", {"store_id": store_id, "offset": 0, "limit": wanted}).fetchall()
        if not items:
            return
        rented = self._q("sim_rent.sql", {"at": at, "customer_id": customer_id, "store_id": store_id,
                                          "items": [i for i, _ in items]}).fetchall()
        rates = dict(items)
        self._pay(at, [r for r, _ in rented], [rates[i] for _, i in rented])

    def _pay(self, at: datetime, rental_ids: list[int], amounts: list[object]) -> None:
        self._ensure_partition(at)
        self._q("sim_pay.sql", {"at": at, "rental_ids": rental_ids, "amounts": amounts})

    def _ensure_partition(self, at: datetime) -> None:
        """Payments past the last partition need a new monthly partition first."""
        name, low, high = self._q("sim_month_bounds.sql", {"at": at}).fetchone()
        exists = self.conn.execute("select to_regclass(%s) is not null", [f"public.{name}"]).fetchone()[0]
        if not exists:
            statement = sql.SQL(sql_text(_Q, "create_payment_partition.sql")).format(
                name=sql.Identifier(name), low=sql.Literal(low), high=sql.Literal(high))
            self.conn.execute(statement)
            self.report.partitions_created.append(name)

    def _return(self, at: datetime) -> None:
        open_rentals = self._q("sim_open_rentals.sql").fetchone()[0]
        if open_rentals:
            self._q("sim_return.sql", {"at": at, "offset": self.rng.randrange(open_rentals)})

    def _late_fee(self, at: datetime) -> None:
        """A return that costs a late fee: the return and its payment in one transaction."""
        open_rentals = self._q("sim_open_rentals.sql").fetchone()[0]
        if not open_rentals:
            return
        returned = self._q("sim_return.sql", {"at": at, "offset": self.rng.randrange(open_rentals)}).fetchone()
        self._pay(at, [returned[0]], [self.rng.choice(("1.00", "2.00", "3.00"))])

    def _customer_change(self, at: datetime) -> None:
        counts = self._counts()
        customer_id = self._q("sim_pick_customer.sql",
                              {"offset": self.rng.randrange(counts["customers"])}).fetchone()[0]
        change = self.rng.choice(("email", "email", "address", "active"))
        params: dict[str, object] = {"customer_id": customer_id, "email": None, "address_id": None, "active": None}
        if change == "email":
            params["email"] = f"customer{customer_id}.{self.rng.randrange(10**6)}@example.org"
        elif change == "address":
            params["address_id"] = self._q("sim_pick_address.sql",
                                           {"offset": self.rng.randrange(counts["addresses"])}).fetchone()[0]
        else:
            params["active"] = self.rng.choice((0, 1))
        self._q("sim_customer_change.sql", params)

    def _film_change(self, at: datetime) -> None:
        films = self._counts()["films"]
        if self.rng.random() < 0.5:  # a price change for several titles at once
            ids = sorted(self.rng.sample(range(1, films + 1), self.rng.randint(2, 6)))
            params = {"rate": self.rng.choice(RATES), "rating": None, "film_ids": ids}
        else:
            params = {"rate": None, "rating": self.rng.choice(RATINGS), "film_ids": [self.rng.randint(1, films)]}
        self._q("sim_film_change.sql", params)

    def _new_customer(self, at: datetime) -> None:
        counts = self._counts()
        address_id = self._q("sim_pick_address.sql", {"offset": self.rng.randrange(counts["addresses"])}).fetchone()[0]
        n = self.rng.randrange(10**6)
        self._q("sim_new_customer.sql", {"store_id": self.rng.choice((1, 2)), "first_name": f"NEW{n}",
                                         "email": f"new{n}@example.org", "address_id": address_id,
                                         "created": at.date()})

    def _payment_delete(self, at: datetime) -> None:
        payments = self._counts()["payments"]
        if payments:
            self._q("sim_delete_payment.sql", {"offset": self.rng.randrange(payments)})


def simulate(dsn: str, seed: int = 42, transactions: int | None = 100, seconds: float | None = None,
             rate: float | None = 50.0, progress: Callable[[int], None] = lambda _: None) -> SimulationReport:
    """Run transactions until `transactions` are done or `seconds` have passed, at about `rate` per second.

    rate=None runs as fast as the source allows."""
    if transactions is None and seconds is None:
        raise ValueError("give transactions or seconds")
    with connect(dsn, "source") as conn:
        sim = Simulator(conn, seed)
        began = time.monotonic()
        while True:
            done = sim.report.transactions
            if transactions is not None and done >= transactions:
                break
            if seconds is not None and time.monotonic() - began >= seconds:
                break
            sim.step()
            progress(done + 1)
            if rate:
                ahead = began + (done + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        sim.report.seconds = time.monotonic() - began
        return sim.report
