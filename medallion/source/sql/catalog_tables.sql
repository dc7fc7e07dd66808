-- Every table of the source outside the system schemas (or only the one whose oid is given),
-- with what capture and silver need:
-- kind, persistence, partition root, replica identity, key, and each column's type as the
-- source declares it and as the warehouse will store it.
--
-- warehouse_type: built-in types keep their exact type (numeric(5,2), varchar(40), text[],
-- timestamp without time zone, ...); a domain becomes its base type; enums, composite and
-- other user-defined types, and the reg* types (whose text names objects of the source's
-- catalog), become text (text[] for arrays of them).
with recursive tables as (
    select c.oid, n.nspname as schema_name, c.relname as table_name, c.relkind, c.relpersistence,
           c.relispartition, c.relreplident
    from pg_class as c
    join pg_namespace as n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p')
      and (%(relid)s::oid is null or c.oid = %(relid)s::oid)
      and n.nspname not in ('pg_catalog', 'information_schema', 'medallion')
      and n.nspname not like 'pg\_toast%%'
      and n.nspname not like 'pg\_temp\_%%'
),

columns as (
    select a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull,
           -- the value rows that existed before ADD COLUMN ... DEFAULT hold (no rewrite, no WAL)
           case when a.atthasmissing then (a.attmissingval::text::text[])[1] end as missing
    from pg_attribute as a
    join tables as t on t.oid = a.attrelid
    where a.attnum > 0 and not a.attisdropped
),

-- a domain's base type and typmod, through domains over domains
base_types (type_oid, typmod, base_oid, base_typmod, depth) as (
    select distinct c.atttypid, c.atttypmod, c.atttypid, c.atttypmod, 0 from columns as c
    union all
    select b.type_oid, b.typmod, t.typbasetype,
           case when b.base_typmod = -1 then t.typtypmod else b.base_typmod end, b.depth + 1
    from base_types as b
    join pg_type as t on t.oid = b.base_oid
    where t.typtype = 'd' and b.depth < 10
),

resolved as (
    select distinct on (type_oid, typmod) type_oid, typmod, base_oid, base_typmod
    from base_types
    order by type_oid, typmod, depth desc
),

typed as (
    select
        c.attrelid, c.attnum, c.attname, c.attnotnull, c.missing,
        format_type(c.atttypid, c.atttypmod) as source_type,
        case
            when bt.typcategory = 'A' then
                case when et.typnamespace = 'pg_catalog'::regnamespace
                          and et.typname not like 'reg%%' and et.typname <> 'aclitem'
                     then format_type(r.base_oid, r.base_typmod) else 'text[]' end
            when bt.typnamespace = 'pg_catalog'::regnamespace
                 and bt.typname not like 'reg%%' and bt.typname <> 'aclitem'
                then format_type(r.base_oid, r.base_typmod)
            else 'text'
        end as warehouse_type
    from columns as c
    join resolved as r on r.type_oid = c.atttypid and r.typmod = c.atttypmod
    join pg_type as bt on bt.oid = r.base_oid
    left join pg_type as et on et.oid = bt.typelem
),

keys as (
    -- the primary key; without one, the replica identity index
    select distinct on (i.indrelid) i.indrelid,
           array_agg(a.attname order by k.ord) as key_columns
    from pg_index as i
    join tables as t on t.oid = i.indrelid
    cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
    join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
    where i.indisprimary or i.indisreplident
    group by i.indrelid, i.indisprimary
    order by i.indrelid, i.indisprimary desc
)

select
    t.oid::bigint as oid,
    t.schema_name,
    t.table_name,
    format('%%I.%%I', t.schema_name, t.table_name) as qualified,
    t.relkind,
    t.relpersistence,
    t.relispartition,
    rn.nspname as root_schema,
    rc.relname as root_table,
    t.relreplident,
    coalesce(k.key_columns, '{}') as key_columns,
    exists (select from pg_index as i where i.indrelid = t.oid and i.indisprimary) as has_primary_key,
    coalesce((select jsonb_agg(jsonb_build_object(
                  'name', ty.attname, 'type', ty.source_type, 'warehouse_type', ty.warehouse_type,
                  'not_null', ty.attnotnull, 'attnum', ty.attnum, 'missing', ty.missing) order by ty.attnum)
              from typed as ty where ty.attrelid = t.oid), '[]') as columns
from tables as t
cross join lateral pg_partition_root(t.oid) as root(oid)
join pg_class as rc on rc.oid = coalesce(root.oid, t.oid)
join pg_namespace as rn on rn.oid = rc.relnamespace
left join keys as k on k.indrelid = t.oid
order by t.schema_name, t.table_name
