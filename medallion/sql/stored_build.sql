-- name: create
-- what the last dbt build of the whole project left for a build without dbt (stored_build.py):
-- one row, rewritten after every successful dbt build of every model
create table if not exists medallion.stored_build (
    one                 boolean     primary key default true check (one),
    project_fingerprint text        not null,  -- the project's files and versions it ran
    recorded_at         timestamptz not null default now(),
    plan                jsonb       not null,  -- the models a step refreshes, what runs before what
    tests               jsonb                  -- the tests as they compiled; null: it ran none
);

-- name: read
select project_fingerprint, plan, tests from medallion.stored_build;

-- name: save
insert into medallion.stored_build (project_fingerprint, plan, tests)
values (%(fingerprint)s, %(plan)s, %(tests)s)
on conflict (one) do update
    set project_fingerprint = excluded.project_fingerprint, recorded_at = now(), plan = excluded.plan,
        tests = case when excluded.tests is not null then excluded.tests
                     when medallion.stored_build.project_fingerprint = excluded.project_fingerprint
                         then medallion.stored_build.tests
                end;

-- name: durations
-- how long each job of the last build without dbt took: the next one starts the jobs on the
-- longest path first (stored_build.py _Scheduler)
update medallion.stored_build set plan = jsonb_set(plan, '{durations}', %(durations)s);

-- name: watermarks
select model, last_commit_lsn, tested_to from medallion.build_watermark where model = any(%(models)s);

-- name: mark_tested
update medallion.build_watermark set tested_to = last_commit_lsn where model = any(%(models)s);

-- name: schemas
-- bronze's record of every table's schema over time: a new entry (a schema change, a re-sync)
-- changes what the models compile to, though no file changes
select md5(coalesce(string_agg(bronze_table || ':' || commit_lsn || ':' || ordinal, ','
                               order by bronze_table, commit_lsn, ordinal), ''))
from bronze.table_schema;

-- name: refill_delete
-- a plain table model refilled by a build without dbt (stored_build.py Refill): its rows, then
-- the SELECT dbt compiled for it, in one transaction; views over it and its grants stay
delete from {relation};

-- name: refill_insert
insert into {relation} select * from (
{select}
) as medallion_refill;
