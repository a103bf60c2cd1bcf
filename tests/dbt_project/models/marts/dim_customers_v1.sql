select
    customer_id,
    first_name || ' ' || last_name as full_name,
    lifetime_value
from {{ ref('customers') }}
