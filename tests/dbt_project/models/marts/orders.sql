{{ config(materialized='incremental', unique_key='order_id') }}

select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.status,
    coalesce(p.payment_count, 0) as payment_count,
    coalesce(p.amount, 0) as amount
from {{ ref('stg_orders') }} as o
left join {{ ref('int_order_payments') }} as p using (order_id)
{% if is_incremental() %}
where o.order_date >= (select coalesce(max(order_date), date '1900-01-01') from {{ this }})
{% endif %}
