-- Valid order lines joined once with their order and product: what every basket and
-- recommendation feature reads. Incremental like int_session_days (append-only orders).
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

items as (
    select * from {{ ref('stg_shop__order_items') }}
),

products as (
    select * from {{ ref('stg_shop__products') }}
)

select
    o.customer_id,
    o.order_id,
    o.ordered_at,
    cast(o.ordered_at as date) as order_date,
    i.product_id,
    i.quantity,
    i.quantity * i.unit_price as line_amount,
    coalesce(p.category, 'unknown') as category,
    o.status not in {{ in_list(var('non_purchase_statuses')) }} as is_purchase
from items as i
inner join orders as o on i.order_id = o.order_id
left join products as p on i.product_id = p.product_id
{%- if is_incremental() %}
where cast(o.ordered_at as date) >= (select max(t.order_date) from {{ this }} as t)
{%- endif %}
