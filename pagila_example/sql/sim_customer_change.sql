update public.customer
set email = coalesce(%(email)s, email),
    address_id = coalesce(%(address_id)s, address_id),
    active = coalesce(%(active)s, active)
where customer_id = %(customer_id)s
