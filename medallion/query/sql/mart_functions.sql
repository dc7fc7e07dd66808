-- Gold marts with an as-of function: (schema, mart, function). The gold_mart materialization
-- comments each gold.<mart>_as_of(ts) "<mart> as computed from the source rows that existed at
-- ts ..." (medallion/dbt/macros/gold/as_of.sql); that comment names the mart it answers for.
select n.nspname, split_part(d.description, ' ', 1), p.proname
from pg_proc as p
join pg_namespace as n on n.oid = p.pronamespace
join pg_description as d on d.objoid = p.oid and d.classoid = 'pg_proc'::regclass
where p.pronargs = 1
  and d.description like '% as computed from the source rows that existed at ts%'
order by 1, 2, 3
