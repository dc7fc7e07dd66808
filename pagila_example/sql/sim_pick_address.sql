select address_id from public.address order by address_id offset %(offset)s limit 1
