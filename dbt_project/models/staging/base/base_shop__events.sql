-- Raw events typed, with a reject reason per row (null = valid).
with source as (
    {{ select_raw('events', [
        ['customer_id', true], ['event_at', true], ['event_type', true],
        ['product_id', false], ['session_id', false]]) }}
),

customers as (
    select customer_id from {{ ref('base_shop__customers') }}
    where reject_reason is null
),

typed as (
    select
        {{ customer_key('s.customer_id') }} as customer_id,
        s.customer_id is not null as has_customer_id,
        s.event_at is not null as has_event_at,
        {{ dbt.safe_cast("s.event_at", api.Column.translate_type("timestamp")) }} as event_at,
        lower(trim(cast(s.event_type as {{ dbt.type_string() }}))) as event_type,
        cast(s.product_id as {{ dbt.type_string() }}) as product_id,
        cast(s.session_id as {{ dbt.type_string() }}) as session_id,
        c.customer_id is not null as has_known_customer
    from source as s
    left join customers as c on {{ customer_key('s.customer_id') }} = c.customer_id
)

select
    customer_id,
    event_at,
    event_type,
    product_id,
    session_id,
    case
        when not has_customer_id then 'null customer_id'
        when customer_id is null then 'non-integer customer_id'
        when not has_event_at then 'null event_at'
        when event_at is null then 'unparseable event_at'
        when event_at > cast({{ dbt.current_timestamp() }} as timestamp) then 'future event_at'
        when event_at < {{ min_valid_date() }} then 'event_at before min_valid_date'
        when event_type is null or event_type = '' then 'null event_type'
        when not has_known_customer then 'orphan event: unknown customer_id'
    end as reject_reason
from typed
