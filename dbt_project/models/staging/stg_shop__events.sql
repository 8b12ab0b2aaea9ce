-- Valid events: typed and de-duplicated; rejected rows are in rejected_rows.
select
    customer_id,
    event_at,
    event_type,
    product_id,
    session_id
from {{ ref('base_shop__events') }}
where reject_reason is null
