{{ config(
    materialized='incremental',
    incremental_strategy='microbatch',
    event_time='event_at',
    batch_size='day',
    begin='2026-11-01',
    lookback=1,
) }}

select event_id, event_at, amount
from {{ ref('mb_source') }}
{{ emulator_batch_fault() }}
