-- Valid products: typed and de-duplicated; rejected rows are in rejected_rows.
select
    product_id,
    category,
    brand,
    price_amount
from {{ ref('base_shop__products') }}
where reject_reason is null
