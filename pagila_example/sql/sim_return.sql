update public.rental
set return_date = %(at)s
where rental_id = (
    select rental_id from public.rental
    where return_date is null
    order by rental_id
    offset %(offset)s limit 1)
returning rental_id
