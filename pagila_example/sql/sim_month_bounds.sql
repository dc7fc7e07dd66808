-- The UTC month around a timestamp, for a new payment partition.
select to_char(m, '"payment_p"YYYY"_"MM') as name, m at time zone 'UTC' as low,
       (m + interval '1 month') at time zone 'UTC' as high
from (select date_trunc('month', %(at)s::timestamptz at time zone 'UTC') as m) as month
