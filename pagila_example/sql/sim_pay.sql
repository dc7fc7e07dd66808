insert into public.payment (customer_id, staff_id, rental_id, amount, payment_date)
select r.customer_id, r.staff_id, r.rental_id, pay.amount, %(at)s
from unnest(%(rental_ids)s::int[], %(amounts)s::numeric[]) as pay(rental_id, amount)
join public.rental as r on r.rental_id = pay.rental_id
