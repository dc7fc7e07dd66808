-- Several films at once (a multi-row update) get a new rate, or one film a new rating.
update public.film
set rental_rate = coalesce(%(rate)s, rental_rate),
    rating = coalesce(%(rating)s::public.mpaa_rating, rating)
where film_id = any(%(film_ids)s::int[])
