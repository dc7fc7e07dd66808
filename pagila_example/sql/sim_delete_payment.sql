delete from public.payment
where payment_id = (select payment_id from public.payment order by payment_id offset %(offset)s limit 1)
