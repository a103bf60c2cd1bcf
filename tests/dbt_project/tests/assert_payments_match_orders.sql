-- Singular test: every order's amount equals the sum of its payments.
select o.order_id
from {{ ref('orders') }} as o
left join (
    select order_id, sum(amount) as paid from {{ ref('stg_payments') }} group by order_id
) as p using (order_id)
where o.amount != coalesce(p.paid, 0)
