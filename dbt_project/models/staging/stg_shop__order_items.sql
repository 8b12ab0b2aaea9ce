-- Valid order items: typed and de-duplicated; rejected rows are in rejected_rows.
select
    order_id,
    product_id,
    quantity,
    unit_price
from {{ ref('int_order_items__validated') }}
where reject_reason is null
