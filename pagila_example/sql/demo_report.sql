-- name: top_months
select month, sum(revenue) as revenue, sum(payments) as payments
from gold.vw_monthly_revenue
group by month
order by revenue desc
limit 3;
-- name: mart_now
select store_id, month, revenue, payments from gold.vw_monthly_revenue
where store_id = %(store_id)s and month = %(month)s;
-- name: mart_before
select store_id, month, revenue, payments from gold.monthly_revenue_as_of(%(at)s)
where store_id = %(store_id)s and month = %(month)s;
-- name: layer_tables
select n.nspname, c.relname
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
  and ((n.nspname = 'bronze' and c.relname in (select bronze_table from bronze.table_schema))
       or n.nspname in ('silver', 'gold'))  -- the engine's bookkeeping is in its own schema
order by array_position(array['bronze', 'silver', 'gold'], n.nspname::text), c.relname;
