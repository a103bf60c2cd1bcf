{#- A table below a microbatch model: skipped when a batch of mb_events fails, rebuilt in full. -#}
select cast(event_at as date) as day, count(*) as events, sum(amount) as amount
from {{ ref('mb_events') }}
group by 1
