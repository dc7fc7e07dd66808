-- One customer rents several items in one statement (a multi-row insert), served by the staff
-- member who last served that store (Pagila's staff rows do not say who works where).
insert into public.rental (rental_date, inventory_id, customer_id, staff_id)
select %(at)s, item, %(customer_id)s,
       (select r.staff_id from public.rental as r
          join public.inventory as i on i.inventory_id = r.inventory_id
         where i.store_id = %(store_id)s
         order by r.rental_id desc limit 1)
from unnest(%(items)s::int[]) as item
returning rental_id, inventory_id
