with inventory_history as (
    select * from {{ ref('dim_inventory_hist') }}
),

final as (
    select
        inventory_id,
        film_id,
        store_id,
        last_update,
        sys_start
    from inventory_history
    where sys_end = 'infinity'
)

select * from final
