-- Raw orders typed, with a reject reason per row (null = valid); the first failing check wins.
with source as (
    {{ select_raw('orders', [
        ['order_id', true], ['customer_id', true], ['ordered_at', true], ['amount', true],
        ['discount', false], ['status', false]]) }}
),

customers as (
    select customer_id from {{ ref('base_shop__customers') }}
    where reject_reason is null
),

typed as (
    select
        cast(s.order_id as {{ dbt.type_string() }}) as order_id,
        {{ customer_key('s.customer_id') }} as customer_id,
        s.customer_id is not null as has_customer_id,
        s.ordered_at is not null as has_ordered_at,
        {{ dbt.safe_cast("s.ordered_at", api.Column.translate_type("timestamp")) }} as ordered_at,
        s.amount is not null as has_amount,
        {{ dbt.safe_cast("s.amount", "decimal(18, 4)") }} as amount,
        coalesce({{ dbt.safe_cast("s.discount", "decimal(18, 4)") }}, 0) as discount_amount,
        coalesce(lower(trim(cast(s.status as {{ dbt.type_string() }}))), 'completed') as status,
        c.customer_id is not null as has_known_customer
    from source as s
    left join customers as c on {{ customer_key('s.customer_id') }} = c.customer_id
),

checked as (
    select
        *,
        case
            when order_id is null then 'null order_id'
            when not has_customer_id then 'null customer_id'
            when customer_id is null then 'non-integer customer_id'
            when not has_ordered_at then 'null ordered_at'
            when ordered_at is null then 'unparseable ordered_at'
            when ordered_at > cast({{ dbt.current_timestamp() }} as timestamp)
                then 'future ordered_at'
            when ordered_at < {{ min_valid_date() }} then 'ordered_at before min_valid_date'
            when not has_amount then 'null amount'
            when amount is null then 'non-numeric amount'
            when amount < 0 then 'negative amount'
            when discount_amount < 0 then 'negative discount'
            when not has_known_customer then 'orphan order: unknown customer_id'
        end as check_reason
    from typed
),

numbered as (
    select
        *,
        row_number() over (
            partition by order_id, check_reason is null
            order by ordered_at, amount, customer_id, status, discount_amount
        ) as row_in_key
    from checked
)

select
    order_id,
    customer_id,
    ordered_at,
    amount,
    discount_amount,
    status,
    coalesce(
        check_reason, case when row_in_key > 1 then 'duplicate order_id' end
    ) as reject_reason
from numbered
