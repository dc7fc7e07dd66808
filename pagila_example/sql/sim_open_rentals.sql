select count(*) from public.rental where return_date is null
