-- Every day from the shop's first order to the end of its first quarter; relation named
-- utils_calendar to avoid clashing with shop.calendar. It reads the root project's stg_orders, so
-- `--select staging+` builds it too.
{{ config(alias='utils_calendar') }}

select cast(d as date) as date_day
from generate_series(date '2024-01-01', date '2024-03-31', interval 1 day) as t(d)
where cast(d as date) >= (select min(order_date) from {{ ref('stg_orders') }})
