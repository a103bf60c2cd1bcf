{#- Six events a day from 2026-10-30 to 2026-12-31: the input of the microbatch models, filtered per batch. -#}
{{ config(materialized='table', event_time='event_at') }}

select
    i as event_id,
    timestamp '2026-10-30 00:00:00' + to_hours(i * 4) as event_at,
    (i % 7) + 1 as amount
from range(0, 6 * 63) as t(i)
