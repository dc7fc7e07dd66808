-- Items of the store that are on the shelf (no open rental), each with its film's rate.
select i.inventory_id, f.rental_rate
from public.inventory as i
join public.film as f on f.film_id = i.film_id
where i.store_id = %(store_id)s
  and not exists (
      select 1 from public.rental as r
      where r.inventory_id = i.inventory_id and r.return_date is null)
order by i.inventory_id
offset %(offset)s limit %(limit)s
