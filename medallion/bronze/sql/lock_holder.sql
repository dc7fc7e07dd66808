-- Who holds the ingester's advisory lock (a bigint key: classid is its high half, objid its low).
select a.pid, coalesce(a.application_name, '') as application, coalesce(a.client_addr::text, 'local') as client
from pg_locks as l
join pg_stat_activity as a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted and l.objsubid = 1
  and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%(key)s, 0)
limit 1
