-- The demo's burst of source changes. Each step is its own transaction, as an application
-- would commit them. Business dates fall in July 2022, inside Pagila's own history.
-- name: new rental and its payment
with item as (
    select i.inventory_id, f.rental_rate
    from public.inventory as i
    join public.film as f on f.film_id = i.film_id
    where i.store_id = 1
      and not exists (select 1 from public.rental as r where r.inventory_id = i.inventory_id and r.return_date is null)
    order by i.inventory_id
    limit 1
),
rented as (
    insert into public.rental (rental_date, inventory_id, customer_id, staff_id)
    select timestamptz '2022-07-30 18:00:00+00', inventory_id, 1, 1 from item
    returning rental_id, customer_id, staff_id
)
insert into public.payment (customer_id, staff_id, rental_id, amount, payment_date)
select rented.customer_id, rented.staff_id, rented.rental_id, item.rental_rate, timestamptz '2022-07-30 18:00:00+00'
from rented cross join item;
-- name: a return
update public.rental set return_date = rental_date + interval '3 days'
where rental_id = (select min(rental_id) from public.rental where return_date is null);
-- name: customer email change
update public.customer set email = 'mary.smith@example.org' where customer_id = 1;
-- name: film price change
update public.film set rental_rate = rental_rate + 1.00 where film_id = 1;
