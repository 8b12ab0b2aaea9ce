-- Raw products typed, with a reject reason per row (null = valid).
with source as (
    {{ select_raw('products', [
        ['product_id', true], ['category', false], ['brand', false], ['price', false]]) }}
),

typed as (
    select
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        coalesce(
            nullif(lower(trim(cast(category as {{ dbt.type_string() }}))), ''), 'unknown'
        ) as category,
        trim(cast(brand as {{ dbt.type_string() }})) as brand,
        {{ dbt.safe_cast("price", "decimal(18, 4)") }} as price_amount
    from source
),

numbered as (
    select
        *,
        row_number() over (
            partition by product_id order by category, brand, price_amount
        ) as row_in_key
    from typed
)

select
    product_id,
    category,
    brand,
    price_amount,
    case
        when product_id is null then 'null product_id'
        when price_amount < 0 then 'negative price'
        when row_in_key > 1 then 'duplicate product_id'
    end as reject_reason
from numbered
