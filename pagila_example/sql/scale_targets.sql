-- name: customer
customer (customer_id, store_id, first_name, last_name, email, address_id, activebool, create_date, last_update, active);
-- name: inventory
inventory (inventory_id, film_id, store_id, last_update);
-- name: rental
rental (rental_id, rental_date, inventory_id, customer_id, return_date, staff_id, last_update);
-- name: payment
payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date);
