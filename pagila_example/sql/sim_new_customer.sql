insert into public.customer (store_id, first_name, last_name, email, address_id, create_date, active)
values (%(store_id)s, %(first_name)s, 'CUSTOMER', %(email)s, %(address_id)s, %(created)s, 1)
