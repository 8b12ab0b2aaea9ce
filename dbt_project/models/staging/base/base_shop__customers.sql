-- Raw customers typed, with a reject reason per row (null = valid). When no customers table
-- exists, customers are derived from the customer ids seen in orders.
{% if raw_exists('customers') or not execute %}
with source as (
    {{ select_raw('customers', [
        ['customer_id', true], ['signup_at', false], ['birth_date', false], ['age', false],
        ['gender', false], ['income', false], ['income_band', false], ['region', false],
        ['channel', false]]) }}
),
{% else %}
{{ log("pyprofile: no customers table; customers are derived from orders", info=true) }}
with source as (
    -- a derived customer signs up with their first plausible order (so point-in-time filters
    -- work)
    select
        customer_id,
        min(
            case
                when {{ dbt.safe_cast("ordered_at", api.Column.translate_type("timestamp")) }}
                    >= {{ min_valid_date() }}
                    then {{ dbt.safe_cast("ordered_at", api.Column.translate_type("timestamp")) }}
            end
        ) as signup_at,
        cast(null as {{ dbt.type_string() }}) as birth_date,
        cast(null as {{ dbt.type_string() }}) as age,
        cast(null as {{ dbt.type_string() }}) as gender,
        cast(null as {{ dbt.type_string() }}) as income,
        cast(null as {{ dbt.type_string() }}) as income_band,
        cast(null as {{ dbt.type_string() }}) as region,
        cast(null as {{ dbt.type_string() }}) as channel
    from (
        {{ select_raw('orders', [['customer_id', true], ['ordered_at', true]]) }}
    ) as o
    where customer_id is not null
    group by customer_id
),
{% endif %}

typed as (
    select
        {{ customer_key('customer_id') }} as customer_id,
        customer_id is not null as has_customer_id,
        {{ dbt.safe_cast("signup_at", api.Column.translate_type("timestamp")) }} as signup_at,
        {{ dbt.safe_cast("birth_date", api.Column.translate_type("date")) }} as birth_date,
        {{ dbt.safe_cast("age", api.Column.translate_type("integer")) }} as age,
        lower(trim(cast(gender as {{ dbt.type_string() }}))) as gender,
        {{ dbt.safe_cast("income", api.Column.translate_type("float")) }} as income,
        trim(cast(income_band as {{ dbt.type_string() }})) as income_band,
        lower(trim(cast(region as {{ dbt.type_string() }}))) as region,
        lower(trim(cast(channel as {{ dbt.type_string() }}))) as channel
    from source
),

numbered as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by signup_at, gender, region, channel, income_band
        ) as row_in_key
    from typed
)

select
    customer_id,
    -- attributes that fail to parse, lie in the future or (sign-up) before min_valid_date
    -- become null; the customer is kept. Implausible ages from birth dates are nulled in the
    -- features, where as_of is known.
    case
        when
            signup_at <= cast({{ dbt.current_timestamp() }} as timestamp)
            and signup_at >= {{ min_valid_date() }}
            then signup_at
    end as signup_at,
    case
        when birth_date <= cast({{ dbt.current_timestamp() }} as date) then birth_date
    end as birth_date,
    case when age between 0 and 120 then age end as age,
    gender,
    case when income >= 0 then income end as income,
    income_band,
    region,
    channel,
    case
        when not has_customer_id then 'null customer_id'
        when customer_id is null then 'non-integer customer_id'
        when row_in_key > 1 then 'duplicate customer_id'
    end as reject_reason
from numbered
