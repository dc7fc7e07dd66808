select (select count(*) from public.customer) as customers,
       (select count(*) from public.film) as films,
       (select count(*) from public.address) as addresses,
       (select count(*) from public.payment) as payments
