-- Same name as shop_utils' calendar: the days on which orders were placed.
select distinct order_date as date_day
from {{ ref('stg_orders') }}
