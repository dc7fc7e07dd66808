-- What the pipeline role needs on the warehouse database, run by an admin: to connect and
-- to create its schemas (bronze, silver, gold), which it then owns. btree_gist (silver's
-- no-overlap constraints) is created here, once, in case the pipeline may not create it.

-- name: database
grant connect, create on database {database} to {role}

-- name: btree_gist
create extension if not exists btree_gist
