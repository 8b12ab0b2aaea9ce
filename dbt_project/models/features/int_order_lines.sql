-- Valid order lines joined once with their order and product: what every basket and
-- recommendation feature reads. Incremental like int_session_days (append-only orders).
{#- the vars that shape the rows: when they change, the table is rebuilt (reset_changed_settings) -#}
{%- set non_purchase = text_list_var('non_purchase_statuses') %}
{%- set settings = local_md5(tojson([non_purchase, min_valid_date()])) %}
{{ config(settings_md5=settings, pre_hook="{{ reset_changed_settings() }}") }}
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
    o.status not in {{ in_list(non_purchase) }} as is_purchase,
    {{ sql_string(settings) }} as settings_md5
from items as i
inner join orders as o on i.order_id = o.order_id
left join products as p on i.product_id = p.product_id
{%- if is_incremental() %}
-- from the latest day already here; every day when the table is empty
where
    cast(o.ordered_at as date)
    >= coalesce((select max(t.order_date) from {{ this }} as t), cast(o.ordered_at as date))
{%- endif %}
