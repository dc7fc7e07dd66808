select customer_id, store_id
from public.customer
order by customer_id
offset %(offset)s limit 1
