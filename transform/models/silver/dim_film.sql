with film_history as (
    select * from {{ ref('dim_film_hist') }}
),

final as (
    select
        film_id,
        title,
        description,
        release_year,
        language_id,
        original_language_id,
        rental_duration,
        rental_rate,
        length,
        replacement_cost,
        rating,
        last_update,
        special_features,
        fulltext,
        sys_start
    from film_history
    where sys_end = 'infinity'
)

select * from final
