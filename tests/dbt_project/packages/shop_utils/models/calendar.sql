-- Every day of the shop's first quarter; relation named utils_calendar to avoid clashing with shop.calendar.
{{ config(alias='utils_calendar') }}

select cast(d as date) as date_day
from generate_series(date '2024-01-01', date '2024-03-31', interval 1 day) as t(d)
