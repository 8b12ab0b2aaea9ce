-- Valid orders: typed and de-duplicated; rejected rows are in rejected_rows.
select
    order_id,
    customer_id,
    ordered_at,
    amount,
    discount_amount,
    status
from {{ ref('base_shop__orders') }}
where reject_reason is null
