-- Valid order items: typed and de-duplicated; rejected rows are in rejected_rows.
select
    order_id,
    product_id,
    quantity,
    unit_price
from {{ ref('base_shop__order_items') }}
where reject_reason is null
