{#-
    Feature SQL parameterised by the observation date, so that the same logic serves scoring
    (at as_of) and point-in-time training (at as_of - horizon). `as_of` is a SQL expression
    of type date. Only data on or before that date is read.
-#}

{% macro in_list(values) -%}
    ({%- for v in values %}'{{ v }}'{{ "," if not loop.last }}{% endfor -%})
{%- endmacro %}

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
        and o.status not in {{ in_list(var('non_purchase_statuses')) }}
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
        {{ dbt.datediff('first_order_date', 'as_of_date', 'day') }} as "T",
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


{% macro feat_orders_sql(as_of) -%}
with as_of as (
    select cast({{ as_of }} as date) as as_of_date
),

orders as (
    select
        o.customer_id,
        o.amount,
        o.discount_amount,
        o.status,
        a.as_of_date,
        cast(o.ordered_at as date) as order_date,
        o.status in {{ in_list(var('returned_statuses')) }} as is_returned,
        o.status in {{ in_list(var('cancelled_statuses')) }} as is_cancelled,
        o.status not in {{ in_list(var('non_purchase_statuses')) }} as is_purchase
    from {{ ref('stg_shop__orders') }} as o
    cross join as_of as a
    where cast(o.ordered_at as date) <= a.as_of_date
),

per_customer as (
    select
        customer_id,
        as_of_date,
        sum(case when is_purchase then 1 else 0 end) as purchases,
        min(case when is_purchase then order_date end) as first_purchase_date,
        max(case when is_purchase then order_date end) as last_purchase_date,
        sum(case when is_returned then 1 else 0 end) as returned_orders,
        sum(case when not is_cancelled then 1 else 0 end) as placed_orders,
        sum(case when not is_cancelled then discount_amount else 0 end) as discount_total,
        sum(case when not is_cancelled then amount + discount_amount else 0 end) as gross_total,
        sum(
            case
                when is_purchase and order_date > {{ dbt.dateadd('day', -90, 'as_of_date') }}
                    then amount
                else 0
            end
        ) as spend_90d,
        sum(
            case
                when
                    is_purchase
                    and order_date > {{ dbt.dateadd('day', -180, 'as_of_date') }}
                    and order_date <= {{ dbt.dateadd('day', -90, 'as_of_date') }}
                    then amount
                else 0
            end
        ) as spend_prev_90d
    from orders
    group by customer_id, as_of_date
)

select
    customer_id,
    case
        when purchases > 1
            then cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} as double)
            / (purchases - 1)
    end as avg_days_between_orders,
    cast(spend_90d as double) as spend_90d_amount,
    cast(spend_prev_90d as double) as spend_prev_90d_amount,
    -- (last 90 days - the 90 before) / their sum: -1 stopped buying, +1 new spend, 0 steady
    coalesce(
        cast(spend_90d - spend_prev_90d as double) / nullif(spend_90d + spend_prev_90d, 0), 0
    ) as spend_trend,
    cast(returned_orders as double) / nullif(placed_orders, 0) as return_rate,
    cast(discount_total as double) / nullif(gross_total, 0) as discount_share
from per_customer
{%- endmacro %}


{% macro feat_baskets_sql(as_of, categories) -%}
with as_of as (
    select cast({{ as_of }} as date) as as_of_date
),

lines as (
    select l.*
    from {{ ref('int_order_lines') }} as l
    cross join as_of as a
    where l.is_purchase and l.order_date <= a.as_of_date
)

select
    customer_id,
    count(distinct product_id) as distinct_products,
    cast(sum(quantity) as double) / count(distinct order_id) as avg_basket_size
    {%- for c in categories %},
    coalesce(
        cast(sum(case when category = '{{ c }}' then line_amount else 0 end) as double)
        / nullif(sum(line_amount), 0), 0
    ) as category_{{ slug(c) }}_share
    {%- endfor %}
    {%- if categories | length >= var('max_categories') %},
    coalesce(
        cast(sum(case when category not in {{ in_list(categories) }} then line_amount else 0 end)
            as double)
        / nullif(sum(line_amount), 0), 0
    ) as category_other_share
    {%- endif %}
from lines
group by customer_id
{%- endmacro %}


{% macro feat_behavior_sql(as_of) -%}
with as_of as (
    select cast({{ as_of }} as date) as as_of_date
),

-- per session first (from the per-session-day table), then per customer
sessions as (
    select
        d.customer_id,
        d.session_id,
        {%- for t in var('event_types') %}
        sum(d.{{ slug(t) }}_events) as {{ slug(t) }}_events,
        {%- endfor %}
        max(d.has_view) as has_view,
        max(d.has_cart) as has_cart,
        max(d.has_purchase) as has_purchase,
        min(d.event_date) as first_date,
        max(d.event_date) as last_date,
        max(a.as_of_date) as as_of_date
    from {{ ref('int_session_days') }} as d
    cross join as_of as a
    where d.event_date <= a.as_of_date
    group by d.customer_id, d.session_id
)

select
    customer_id,
    {%- for t in var('event_types') %}
    sum({{ slug(t) }}_events) as {{ slug(t) }}_events,
    {%- endfor %}
    count(session_id) as session_count,
    cast(sum(case when session_id is not null then has_cart else 0 end) as double)
    / nullif(sum(case when session_id is not null then has_view else 0 end), 0)
        as view_to_cart_rate,
    cast(sum(case when session_id is not null then has_purchase else 0 end) as double)
    / nullif(sum(case when session_id is not null then has_cart else 0 end), 0)
        as cart_to_purchase_rate,
    min(first_date) as first_visit_date,
    {{ dbt.datediff('max(last_date)', 'max(as_of_date)', 'day') }} as days_since_last_visit
from sessions
group by customer_id
{%- endmacro %}


{% macro customer_features_sql(as_of, rfm, orders, baskets, behavior, categories) -%}
{#- rfm/orders/baskets/behavior: relations or CTE names holding those feature parts. -#}
with as_of as (
    select cast({{ as_of }} as date) as as_of_date
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
)

select
    c.customer_id,
    a.as_of_date,
    r.first_order_date,
    r.last_order_date,
    r.recency_days,
    coalesce(r.order_count, 0) as order_count,
    coalesce(r.monetary_amount, 0) as monetary_amount,
    r.avg_order_amount,
    {{ dbt.datediff(
        'coalesce(cast(c.signup_at as date), r.first_order_date, b.first_visit_date, a.as_of_date)',
        'a.as_of_date', 'day') }} as tenure_days,
    r.frequency,
    r.recency,
    r."T",
    r.monetary_value,
    r.r_score,
    r.f_score,
    r.m_score,
    {{ rfm_segment('r.r_score', 'r.f_score', 'r.m_score') }} as rfm_segment,
    o.avg_days_between_orders,
    coalesce(o.spend_90d_amount, 0) as spend_90d_amount,
    coalesce(o.spend_prev_90d_amount, 0) as spend_prev_90d_amount,
    coalesce(o.spend_trend, 0) as spend_trend,
    o.return_rate,
    o.discount_share,
    coalesce(k.distinct_products, 0) as distinct_products,
    k.avg_basket_size,
    {%- for cat in categories %}
    k.category_{{ slug(cat) }}_share,
    {%- endfor %}
    {%- if categories | length >= var('max_categories') %}
    k.category_other_share,
    {%- endif %}
    {%- for t in var('event_types') %}
    coalesce(b.{{ slug(t) }}_events, 0) as {{ slug(t) }}_events,
    {%- endfor %}
    coalesce(b.session_count, 0) as session_count,
    b.view_to_cart_rate,
    b.cart_to_purchase_rate,
    b.days_since_last_visit,
    coalesce(
        c.age,
        cast(floor({{ dbt.datediff('c.birth_date', 'a.as_of_date', 'day') }} / 365.25) as integer)
    ) as age,
    c.gender,
    coalesce(
        c.income_band,
        case
            when c.income < 25000 then '<25k'
            when c.income < 50000 then '25-50k'
            when c.income < 100000 then '50-100k'
            when c.income >= 100000 then '100k+'
        end
    ) as income_band,
    c.region,
    c.channel,
    coalesce(r.order_count, 0) > 0 as has_purchased
from customers as c
cross join as_of as a
left join {{ rfm }} as r on c.customer_id = r.customer_id
left join {{ orders }} as o on c.customer_id = o.customer_id
left join {{ baskets }} as k on c.customer_id = k.customer_id
left join {{ behavior }} as b on c.customer_id = b.customer_id
-- point in time: customers first seen after the observation date do not exist yet
where coalesce(cast(c.signup_at as date), r.first_order_date, b.first_visit_date, a.as_of_date)
    <= a.as_of_date
-- a stable row order: models read the table in this order, so reruns train identically
order by c.customer_id
{%- endmacro %}
