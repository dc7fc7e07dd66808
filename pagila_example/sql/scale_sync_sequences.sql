-- New rows from the application continue after the copies. (Pagila's id columns use
-- nextval defaults without OWNED BY, so pg_get_serial_sequence cannot find these.)
select setval('public.customer_customer_id_seq', (select max(customer_id) from public.customer));
select setval('public.inventory_inventory_id_seq', (select max(inventory_id) from public.inventory));
select setval('public.rental_rental_id_seq', (select max(rental_id) from public.rental));
select setval('public.payment_payment_id_seq', (select max(payment_id) from public.payment));
