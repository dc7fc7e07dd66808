-- What scaling starts from: the original rows' largest ids, and which copies exist already.
select (select max(customer_id) from public.customer where customer_id < %(small_stride)s) as max_customer,
       (select max(inventory_id) from public.inventory where inventory_id < %(small_stride)s) as max_inventory,
       array(select distinct rental_id / %(large_stride)s from public.rental order by 1) as copies_present
