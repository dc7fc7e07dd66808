"""A scripted system-time history for the time-travel tests, in a warehouse database of its own.

Periods are half-open, [sys_start, sys_end):

    customer 1  Ann   [Jan 1, Mar 1)   Anna  [Mar 1, infinity)
    customer 2  Bob   [Feb 1, Apr 1)   (deleted on Apr 1)
    customer 3  Cy    [Jan 1, Feb 1)   Cyd   [Feb 1, Mar 1)   Cyrus [Mar 1, infinity)
    address     1 Oslo [Jan 1, Feb 15)   1 Rome [Feb 15, infinity)   3 Bergen [Jan 1, infinity)

One database per test module rather than the per-test `settings` fixture: the queries run
read-only, so tests cannot disturb each other, and cloning Pagila per test (~1 s) is not
needed here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql

from medallion.settings import DEFAULT_ANALYST_ROLE, Settings
from medallion.source.cluster import EmbeddedCluster
from support import create_database, drop_database, execute

HISTORY = """
create schema hist;
create table hist.customer_hist (
    customer_id int not null,
    name text not null,
    sys_start timestamptz not null,
    sys_end timestamptz not null default 'infinity'
);
create table hist.address_hist (
    customer_id int not null,
    city text not null,
    sys_start timestamptz not null,
    sys_end timestamptz not null default 'infinity'
);
create view hist.customer as select customer_id, name from hist.customer_hist where sys_end = 'infinity';
create table hist.rental (rental_id int, customer_id int, rented_at timestamptz);
create table hist.text_periods (id int, sys_start text, sys_end text);
insert into hist.customer_hist values
    (1, 'Ann',   '2026-01-01 00:00+00', '2026-03-01 00:00+00'),
    (1, 'Anna',  '2026-03-01 00:00+00', 'infinity'),
    (2, 'Bob',   '2026-02-01 00:00+00', '2026-04-01 00:00+00'),
    (3, 'Cy',    '2026-01-01 00:00+00', '2026-02-01 00:00+00'),
    (3, 'Cyd',   '2026-02-01 00:00+00', '2026-03-01 00:00+00'),
    (3, 'Cyrus', '2026-03-01 00:00+00', 'infinity');
insert into hist.address_hist values
    (1, 'Oslo',   '2026-01-01 00:00+00', '2026-02-15 00:00+00'),
    (1, 'Rome',   '2026-02-15 00:00+00', 'infinity'),
    (3, 'Bergen', '2026-01-01 00:00+00', 'infinity');
insert into hist.rental values (10, 1, '2026-02-10 12:00+00'), (11, 1, '2026-03-05 09:00+00'),
                               (12, 3, '2026-01-20 08:00+00');
"""


@contextmanager
def history_warehouse(cluster: EmbeddedCluster, label: str) -> Iterator[Settings]:
    """Settings whose warehouse holds HISTORY (the source DSN is never used by queries)."""
    name = f"wh_{label}_{os.getpid()}"
    drop_database(cluster, name)
    dsn = create_database(cluster, name)
    execute(dsn, HISTORY)
    # queries run as the analyst role, which reads what an admin grants it (here: the hist schema)
    execute(dsn, sql.SQL("grant usage on schema hist to {analyst}; grant select on all tables in schema hist "
                         "to {analyst}").format(analyst=sql.Identifier(DEFAULT_ANALYST_ROLE)))
    try:
        yield Settings(home=cluster.home, source_dsn=dsn, warehouse_dsn=dsn, slot=f"unused_{label}", pagila_dir=None)
    finally:
        drop_database(cluster, name)
