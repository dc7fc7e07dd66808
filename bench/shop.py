"""The shop schema of the tests, a database that is not Pagila, and a dbt project of its own.

An order-processing schema (text, uuid and composite keys, bytea pictures over the TOAST
threshold, numeric with scale, arrays, timestamp without time zone, an enum, a partitioned
table, a table whose name needs quoting, a table without a key), its workload, and a gold
project over it (two plain single-file gold_mart marts with quoted column names, one over a
text key, one over a composite key, both on the delta path) with each mart's aggregate computed
from the source. The tests (test_any_database, test_gold_any_database, test_stored_build) and the
bench's nightly scenario share it: one definition, no pytest here.
"""

from __future__ import annotations

from pathlib import Path

SHOP_SCHEMA = """
create schema shop;
create type shop.order_status as enum ('new', 'paid', 'shipped');
create table shop.customers (
    customer_code text primary key,
    name varchar(80) not null,
    email text,
    created_at timestamp without time zone not null default '2026-01-01 10:00',
    tags text[]
);
create table shop.products (
    sku uuid primary key,
    title text not null,
    price numeric(10,2) not null,
    picture bytea,
    weight_kg real,
    dims integer[]
);
create table shop.orders (
    region char(2),
    order_id bigint,
    customer_code text not null,
    status shop.order_status not null default 'new',
    placed_at timestamptz not null,
    total numeric(12,3),
    primary key (region, order_id)
);
create table shop.order_lines (
    region char(2),
    order_id bigint,
    line_no smallint,
    sku uuid not null,
    qty integer not null,
    unit_price numeric(10,2) not null,
    primary key (region, order_id, line_no)
);
create table shop.events (
    event_id bigint,
    at timestamptz,
    kind text,
    payload jsonb,
    primary key (event_id, at)
) partition by range (at);
create table shop.events_2026_01 partition of shop.events for values from ('2026-01-01') to ('2026-02-01');
create table shop.events_2026_02 partition of shop.events for values from ('2026-02-01') to ('2026-03-01');
create table shop."Order Notes" (
    "Note ID" integer primary key,
    "Order Ref" text,
    "Body" text
);
create table shop.audit_log (at timestamptz, message text);
create table public.not_selected (id int primary key);
"""

# a picture well over the 2 kB TOAST threshold, and incompressible (md5 chains)
PICTURE = "decode((select string_agg(md5(g::text || {seed}), '') from generate_series(1, 300) as g), 'hex')"

SHOP_STEPS = [
    # initial rows (before capture starts)
    ["insert into shop.customers (customer_code, name, email, tags) values "
     "('C-1', 'Ann', 'ann@example.com', '{vip,north}'), ('C-2', 'Bob', null, '{}'), ('c-3 x', 'Cé', 'c@x', null)",
     f"insert into shop.products values ('7d3a2f3e-1b2c-4d5e-8f90-0123456789ab', 'Lamp', 19.99, {PICTURE.format(seed=1)},"
     " 1.25, '{10,20,30}'), ('00000000-0000-0000-0000-000000000001', 'Desk', 249.50, null, 30.5, null)",
     "insert into shop.orders values ('EU', 1, 'C-1', 'new', '2026-01-05 09:00+00', 19.990), "
     "('US', 1, 'C-2', 'paid', '2026-01-06 10:00+00', 249.500)",
     "insert into shop.order_lines values ('EU', 1, 1, '7d3a2f3e-1b2c-4d5e-8f90-0123456789ab', 1, 19.99), "
     "('US', 1, 1, '00000000-0000-0000-0000-000000000001', 1, 249.50)",
     "insert into shop.events values (1, '2026-01-05 09:00+00', 'order', '{\"region\": \"EU\", \"n\": 1}'), "
     "(2, '2026-02-01 00:00+00', 'order', '{\"region\": \"US\"}')",
     "insert into shop.\"Order Notes\" values (1, 'EU-1', 'leave at the door')",
     "insert into shop.audit_log values ('2026-01-05 09:00+00', 'created'), ('2026-01-05 09:00+00', 'created')"],
    # updates, a price change that leaves the TOASTed picture alone, a key change
    ["update shop.products set price = 17.50 where title = 'Lamp'",
     "update shop.customers set email = 'bob@example.com', tags = '{new}' where customer_code = 'C-2'",
     "update shop.orders set status = 'shipped', total = total + 0.005 where region = 'EU' and order_id = 1",
     "update shop.customers set customer_code = 'C-2b' where customer_code = 'C-2'",
     "update shop.audit_log set message = 'checked' where message = 'created'"],
    # composite key change, deletes, a new partition and a row moved across partitions
    ["update shop.orders set order_id = 1001 where region = 'US' and order_id = 1",
     "update shop.order_lines set order_id = 1001 where region = 'US' and order_id = 1",
     "delete from shop.customers where customer_code = 'c-3 x'",
     "create table shop.events_2026_03 partition of shop.events for values from ('2026-03-01') to ('2026-04-01')",
     "insert into shop.events values (3, '2026-03-03 03:03+00', 'refund', null)",
     "update shop.events set at = '2026-03-01 12:00+00' where event_id = 1",
     "update shop.\"Order Notes\" set \"Body\" = 'ring twice', \"Order Ref\" = null where \"Note ID\" = 1",
     "delete from shop.audit_log where message = 'checked'"],
    # several changes to one row in one transaction, a picture replaced, then deleted rows
    ["begin; update shop.products set title = 'Lamp 2' where title = 'Lamp'; "
     f"update shop.products set picture = {PICTURE.format(seed=2)}, dims = '{{1,2}}' where title = 'Lamp 2'; commit",
     "delete from shop.order_lines where region = 'EU'",
     "delete from shop.events where event_id = 2",
     "insert into shop.customers (customer_code, name) values ('C-9', 'Zoë')"],
]

PROJECT = {
    "dbt_project.yml": """
name: shop_gold
version: "0.1.0"
config-version: 2
model-paths: ["models"]
models:
  shop_gold:
    gold:
      +schema: gold
""",
    "models/gold/customers_by_domain.sql": """
{{ config(materialized='gold_mart') }}
select
    coalesce(split_part(c.email, '@', 2), 'no mail') as "Mail Domain",
    count(*) as "Customers",
    sum(coalesce(cardinality(c.tags), 0)) as "Tags"
from {{ ref('shop__customers') }} as c
group by 1
""",
    "models/gold/orders_by_day.sql": """
{{ config(materialized='gold_mart') }}
select
    (o.placed_at at time zone 'UTC')::date as "Day",
    sum(o.total) as "Total",
    count(*) filter (where o.status = 'shipped') as "Shipped"
from {{ ref('shop__orders') }} as o
group by 1
""",
}

FROM_SOURCE = {
    "customers_by_domain": "select coalesce(split_part(email, '@', 2), 'no mail'), count(*), "
                           "sum(coalesce(cardinality(tags), 0)) from shop.customers group by 1 order by 1",
    "orders_by_day": "select (placed_at at time zone 'UTC')::date, sum(total), "
                     "count(*) filter (where status = 'shipped') from shop.orders group by 1 order by 1",
}


CONFIG = '[capture]\ninclude = ["shop.*"]\n[transform]\ndbt_project = "shop_gold"\n'


def write_project(folder: Path, extra: dict[str, str] | None = None, gold: bool = True) -> Path:
    """A user's folder: medallion.toml capturing shop.* and the gold project in shop_gold/
    (extra: more files of that project; gold=False: silver only). Returns the medallion.toml."""
    if not gold:
        (folder / "medallion.toml").write_text(CONFIG.split("[transform]")[0], encoding="utf-8")
        return folder / "medallion.toml"
    for name, text in {**PROJECT, **(extra or {})}.items():
        (folder / "shop_gold" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "shop_gold" / name).write_text(text, encoding="utf-8")
    (folder / "medallion.toml").write_text(CONFIG, encoding="utf-8")
    return folder / "medallion.toml"


def grow_sql(customers: int, orders_per_customer: int = 10) -> list[str]:
    """More rows than SHOP_STEPS[0] holds, for a change of a given share to mean something:
    customers B-1.. and orders in region 'BN' (order ids 1..), spread over January."""
    return [f"insert into shop.customers (customer_code, name, email, tags) "
            f"select 'B-' || g, 'name ' || g, 'b' || g || '@example.' || (g % 7), '{{bulk}}' "
            f"from generate_series(1, {customers}) as g",
            f"insert into shop.orders select 'BN', g, 'B-' || (1 + g % {customers}), 'paid', "
            f"'2026-01-01 00:00+00'::timestamptz + (g % 31) * interval '1 day', (g % 1000) / 10.0 "
            f"from generate_series(1, {customers * orders_per_customer}) as g"]


def change_sql(percent: float) -> list[str]:
    """Updates to `percent` of the grown customers and orders (one transaction each)."""
    every = max(1, round(100 / percent))
    return [f"update shop.customers set email = 'moved' || customer_code || '@example.org' "
            f"where customer_code like 'B-%' and substr(customer_code, 3)::int % {every} = 0",
            f"update shop.orders set total = total + 1, status = 'shipped' where region = 'BN' and order_id % {every} = 0"]
