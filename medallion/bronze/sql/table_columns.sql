-- Columns of a source table in order, with the type that decides their JSON form.
select a.attname, a.atttypid::regtype::text as type_name, a.atttypid::int as type_oid
from pg_attribute as a
where a.attrelid = to_regclass(format('%%I.%%I', %(schema)s::text, %(table)s::text))
  and a.attnum > 0 and not a.attisdropped
order by a.attnum
