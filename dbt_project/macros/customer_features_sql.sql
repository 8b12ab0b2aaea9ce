{#-
    The wide feature table at `as_of`: one row per customer known then, joining the feature
    parts. rfm/orders/baskets/behavior are relations or CTE names holding those parts.

    Feature SQL is parameterised by the observation date so that the same logic serves scoring
    (at as_of) and point-in-time training (at as_of - horizon): `as_of` is a SQL expression of
    type date, and only data on or before it is read.
-#}
{% macro customer_features_sql(as_of, rfm, orders, baskets, behavior, categories) -%}
with as_of as (
    select cast({{ as_of }} as date) as as_of_date
),

customers as (
    select
        c.*,
        coalesce(
            c.age,
            cast(floor({{ dbt.datediff('c.birth_date', 'a.as_of_date', 'day') }} / 365.25) as integer)
        ) as age_years
    from {{ ref('stg_shop__customers') }} as c
    cross join as_of as a
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
    r.{{ adapter.quote('T') }},
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
    {%- for col in category_columns(categories) %}
    k.category_{{ col[0] }}_share,
    {%- endfor %}
    {%- if categories | length >= max_categories() %}
    k.category_other_share,
    {%- endif %}
    {%- for t in event_type_columns() %}
    coalesce(b.{{ t[1] }}_events, 0) as {{ t[1] }}_events,
    {%- endfor %}
    coalesce(b.session_count, 0) as session_count,
    b.view_to_cart_rate,
    b.cart_to_purchase_rate,
    b.days_since_last_visit,
    -- age from `age`, else from birth_date at as_of; outside 0-120 (born after as_of, or an
    -- implausible birth date) it is null and the customer is kept
    case when c.age_years between 0 and 120 then c.age_years end as age,
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
