-- The bench's OLTP shape (bench/capture.py): {transactions} small transactions on Pagila, committed
-- one by one, four row changes each, as a rental desk makes them: a new rental and its payment
-- (two inserts), an earlier rental returned and an earlier payment corrected (two updates by key).
-- Run outside a transaction block (each COMMIT ends one). The rows come from the source as it is
-- (ids picked by a fixed stride, so the same source gives the same changes); the new rentals and
-- payments fall in March 2022, a month Pagila's payment partitions hold, half a second off the
-- whole seconds of Pagila's own rental dates (its unique (rental_date, inventory, customer)), one
-- second apart, after those of an earlier run on the same source.
do $bench$
declare
    rentals int[];
    payments int[];
    paid timestamptz[];
    customers int[];
    inventory int[];
    new_rental int;
    customer int;
    at timestamptz;
    k int;
    earlier bigint;
begin
    select count(*) into earlier from public.rental where rental_date <> date_trunc('second', rental_date);
    select array_agg(rental_id order by rental_id) into rentals from public.rental;
    select array_agg(payment_id order by payment_id), array_agg(payment_date order by payment_id)
        into payments, paid from public.payment;
    select array_agg(customer_id order by customer_id) into customers from public.customer;
    select array_agg(inventory_id order by inventory_id) into inventory from public.inventory;
    for i in 1..{transactions} loop
        at := timestamptz '2022-03-02 00:00:00.5+00' + make_interval(secs => earlier + i);
        customer := customers[1 + (i::bigint * 104729 % cardinality(customers))::int];
        insert into public.rental (rental_date, inventory_id, customer_id, staff_id)
        values (at, inventory[1 + (i::bigint * 7919 % cardinality(inventory))::int], customer, 1 + i % 2)
        returning rental_id into new_rental;
        insert into public.payment (customer_id, staff_id, rental_id, amount, payment_date)
        values (customer, 1 + i % 2, new_rental, 2.99, at);
        update public.rental set return_date = coalesce(return_date, rental_date) + interval '1 minute'
        where rental_id = rentals[1 + (i::bigint * 15485863 % cardinality(rentals))::int];
        k := 1 + (i::bigint * 32452843 % cardinality(payments))::int;
        update public.payment set amount = amount + 0.01 where payment_id = payments[k] and payment_date = paid[k];
        commit;
    end loop;
end
$bench$
