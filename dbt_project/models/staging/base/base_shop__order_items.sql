-- Raw order lines typed, with a reject reason per row (null = valid).
with source as (
    {{ select_raw('order_items', [
        ['order_id', true], ['product_id', true], ['quantity', true], ['unit_price', true]]) }}
),

orders as (
    select order_id from {{ ref('base_shop__orders') }}
    where reject_reason is null
),

products as (
    select product_id from {{ ref('base_shop__products') }}
    where reject_reason is null
),

typed as (
    select
        cast(s.order_id as {{ dbt.type_string() }}) as order_id,
        cast(s.product_id as {{ dbt.type_string() }}) as product_id,
        {{ dbt.safe_cast("s.quantity", api.Column.translate_type("integer")) }} as quantity,
        {{ dbt.safe_cast("s.unit_price", "decimal(18, 4)") }} as unit_price,
        o.order_id is not null as has_known_order,
        p.product_id is not null as has_known_product
    from source as s
    left join orders as o on cast(s.order_id as {{ dbt.type_string() }}) = o.order_id
    left join products as p on cast(s.product_id as {{ dbt.type_string() }}) = p.product_id
)

select
    order_id,
    product_id,
    quantity,
    unit_price,
    case
        when order_id is null then 'null order_id'
        when product_id is null then 'null product_id'
        when quantity is null or quantity <= 0 then 'missing or non-positive quantity'
        when unit_price is null or unit_price < 0 then 'missing or negative unit_price'
        when not has_known_order then 'orphan line: unknown or rejected order_id'
        {%- if raw_exists('products') %}
        when not has_known_product then 'unknown product_id'
        {%- endif %}
    end as reject_reason
from typed
