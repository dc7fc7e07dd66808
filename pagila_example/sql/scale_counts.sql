select (select count(*) from public.rental) as rentals, (select count(*) from public.payment) as payments
