-- The simulated business clock starts just after the latest rental or payment in the source,
-- so a seed gives the same timestamps on every fresh source.
select greatest(
    (select max(rental_date) from public.rental),
    (select max(payment_date) from public.payment)
) + interval '1 minute'
