-- The three marts place the same payments and rentals: their totals agree. Returns a row
-- (a failure) when they do not.
with monthly as (
    select coalesce(sum(revenue), 0) as revenue from {{ ref('vw_monthly_revenue') }}
),

titles as (
    select coalesce(sum(revenue), 0) as revenue, coalesce(sum(rentals), 0) as rentals
    from {{ ref('vw_top_titles') }}
),

scorecard as (
    select coalesce(sum(revenue), 0) as revenue, coalesce(sum(rentals), 0) as rentals
    from {{ ref('vw_store_scorecard') }}
),

final as (
    select monthly.revenue, titles.revenue as titles_revenue, scorecard.revenue as scorecard_revenue,
           titles.rentals, scorecard.rentals as scorecard_rentals
    from monthly, titles, scorecard
    where monthly.revenue <> titles.revenue or monthly.revenue <> scorecard.revenue
       or titles.rentals <> scorecard.rentals
)

select * from final
