-- Implicit feedback for recommendations: one row per customer x product interacted with on or
-- before as_of. weight = sum over interactions of the type's weight (var interaction_weights:
-- product view < add to cart < purchase, per unit bought), optionally decayed by age with a
-- half-life (var interaction_half_life_days; null = no decay).
-- Every var is checked before it becomes SQL: weights and half-life are numbers, names are
-- escaped string literals.
{%- set weights = interaction_weights() %}
{%- set half_life = interaction_half_life() %}
{%- set view_event = checked_text(var('view_event'), 'view_event') %}
{%- set cart_event = checked_text(var('cart_event'), 'cart_event') %}

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

purchases as (
    select
        l.customer_id,
        l.product_id,
        l.ordered_at as interacted_at,
        'purchase' as kind,
        l.quantity as units
    from {{ ref('int_order_lines') }} as l
    cross join as_of as a
    where l.is_purchase and l.order_date <= a.as_of_date
),

events as (
    select
        e.customer_id,
        e.product_id,
        e.event_at as interacted_at,
        e.event_type as kind,
        1 as units
    from {{ ref('stg_shop__events') }} as e
    cross join as_of as a
    where
        e.product_id is not null
        and cast(e.event_at as date) <= a.as_of_date
        and e.event_type in {{ in_list(weights | map('first') | reject('equalto', 'purchase') | list) }}
),

interactions as (
    select * from purchases
    union all
    select * from events
),

weighted as (
    select
        x.customer_id,
        x.product_id,
        x.kind,
        x.interacted_at,
        x.units
        {%- if weights %} * case
            {%- for kind, w in weights %}
            when x.kind = {{ sql_string(kind) }} then {{ w }}
            {%- endfor %}
            else 0
        end
        {%- else %} * 0
        {%- endif %}
        {%- if half_life is not none %}
        * exp(-ln(2) * {{ dbt.datediff('cast(x.interacted_at as date)', 'a.as_of_date', 'day') }}
            / {{ half_life }})
        {%- endif %} as weight
    from interactions as x
    {%- if half_life is not none %}
    cross join as_of as a
    {%- endif %}
)

select
    customer_id,
    product_id,
    cast(sum(weight) as double) as weight,
    max(interacted_at) as last_interaction_at,
    sum(case when kind = 'purchase' then 1 else 0 end) as purchase_count,
    sum(case when kind = {{ sql_string(cart_event) }} then 1 else 0 end) as cart_count,
    sum(case when kind = {{ sql_string(view_event) }} then 1 else 0 end) as view_count,
    sum(case when kind = 'purchase' then 1 else 0 end) > 0 as is_purchased
from weighted
group by customer_id, product_id
order by customer_id, product_id
