select
    cal.date_day,
    coalesce(sum(o.amount), 0) as revenue
from {{ ref('shop_utils', 'calendar') }} as cal
left join {{ ref('orders') }} as o on o.order_date = cal.date_day
where cal.date_day <= (select max(date_day) from {{ ref('calendar') }})
group by cal.date_day
