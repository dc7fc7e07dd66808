-- A monthly payment partition, captured like the others (REPLICA IDENTITY FULL).
create table if not exists public.{name} partition of public.payment
    for values from ({low}) to ({high});
alter table public.{name} replica identity full
