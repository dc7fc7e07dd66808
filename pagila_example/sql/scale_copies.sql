-- Copy {copy} of Pagila's original rentals and payments, with their own customers and
-- inventory, ids shifted by {copy} * stride. One statement per table, in foreign-key order.
-- name: customer
select customer_id + {copy} * {small_stride}, store_id, first_name, last_name, email, address_id,
       activebool, create_date, last_update, active
from public.customer where customer_id < {small_stride};
-- name: inventory
select inventory_id + {copy} * {small_stride}, film_id, store_id, last_update
from public.inventory where inventory_id < {small_stride};
-- name: rental
select rental_id + {copy} * {large_stride}, rental_date, inventory_id + {copy} * {small_stride},
       customer_id + {copy} * {small_stride}, return_date, staff_id, last_update
from public.rental where rental_id < {large_stride};
-- name: payment
select payment_id + {copy} * {large_stride}, customer_id + {copy} * {small_stride}, staff_id,
       rental_id + {copy} * {large_stride}, amount, payment_date
from public.payment where payment_id < {large_stride} and rental_id < {large_stride};
