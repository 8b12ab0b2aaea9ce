{#-
    RFM, the lifetimes-style summary and R/F/M quintile scores per customer with a purchase
    on or before `as_of`.

    Feature SQL is parameterised by the observation date so that the same logic serves scoring
    (at as_of) and point-in-time training (at as_of - horizon): `as_of` is a SQL expression of
    type date, and only data on or before it is read.
-#}
{% macro feat_rfm_sql(as_of) -%}
with as_of as (
    select cast({{ as_of }} as date) as as_of_date
),

purchases as (
    select
        o.customer_id,
        o.amount,
        cast(o.ordered_at as date) as order_date,
        a.as_of_date
    from {{ ref('stg_shop__orders') }} as o
    cross join as_of as a
    where
        cast(o.ordered_at as date) <= a.as_of_date
        and o.status not in {{ in_list(text_list_var('non_purchase_statuses')) }}
),

daily as (
    select
        customer_id,
        order_date,
        as_of_date,
        count(*) as day_orders,
        sum(amount) as day_amount
    from purchases
    group by customer_id, order_date, as_of_date
),

first_days as (
    select
        customer_id,
        min(order_date) as first_order_date
    from daily
    group by customer_id
),

per_customer as (
    select
        d.customer_id,
        d.as_of_date,
        f.first_order_date,
        max(d.order_date) as last_order_date,
        sum(d.day_orders) as order_count,
        sum(d.day_amount) as monetary_amount,
        count(*) as purchase_days,
        sum(case when d.order_date = f.first_order_date then d.day_amount else 0 end)
            as first_day_amount
    from daily as d
    inner join first_days as f on d.customer_id = f.customer_id
    group by d.customer_id, d.as_of_date, f.first_order_date
),

rfm as (
    select
        customer_id,
        as_of_date,
        first_order_date,
        last_order_date,
        {{ dbt.datediff('last_order_date', 'as_of_date', 'day') }} as recency_days,
        order_count,
        cast(monetary_amount as double) as monetary_amount,
        cast(monetary_amount as double) / order_count as avg_order_amount,
        -- lifetimes-style summary (freq="D"): repeat purchase days, their span, the age
        purchase_days - 1 as frequency,
        {{ dbt.datediff('first_order_date', 'last_order_date', 'day') }} as recency,
        {{ dbt.datediff('first_order_date', 'as_of_date', 'day') }} as {{ adapter.quote('T') }},
        case
            when purchase_days > 1
                then cast(monetary_amount - first_day_amount as double) / (purchase_days - 1)
            else 0
        end as monetary_value
    from per_customer
)

select
    *,
    -- quintile scores 1-5: 1 + floor(5 * percent_rank), capped at 5; ties share a score,
    -- the lowest value always scores 1 and 5 is best (most recent, most orders, most spend)
    cast(least(5, 1 + floor(5 * percent_rank() over (order by recency_days desc))) as integer)
        as r_score,
    cast(least(5, 1 + floor(5 * percent_rank() over (order by order_count))) as integer)
        as f_score,
    cast(least(5, 1 + floor(5 * percent_rank() over (order by monetary_amount))) as integer)
        as m_score
from rfm
{%- endmacro %}
