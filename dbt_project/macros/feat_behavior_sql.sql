{#-
    Browsing behaviour per customer with events up to `as_of`, from the per-session-day table:
    event counts per type, sessions, funnel rates, first visit and days since the last one.

    Feature SQL is parameterised by the observation date so that the same logic serves scoring
    (at as_of) and point-in-time training (at as_of - horizon): `as_of` is a SQL expression of
    type date, and only data on or before it is read.
-#}
{% macro feat_behavior_sql(as_of) -%}
with as_of as (
    select cast({{ as_of }} as date) as as_of_date
),

-- per session first (from the per-session-day table), then per customer
sessions as (
    select
        d.customer_id,
        d.session_id,
        {%- for t in event_type_columns() %}
        sum(d.{{ t[1] }}_events) as {{ t[1] }}_events,
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
    {%- for t in event_type_columns() %}
    sum({{ t[1] }}_events) as {{ t[1] }}_events,
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
