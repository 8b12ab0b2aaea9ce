-- Point-in-time training set for propensity models: one row per customer with a purchase on or
-- before cutoff = as_of - horizon_days, with the features as of cutoff (the same feature SQL as
-- customer_features) and the labels observed in the window (cutoff, as_of].
-- depends_on: {{ ref('int_order_lines') }}
-- depends_on: {{ ref('int_session_days') }}
{%- set horizon = sql_integer(config.get('horizon_days'), 'horizon_days', 1, 36500) | int
    if execute else 90 %}
{%- set cutoff = "cast(" ~ dbt.dateadd('day', -horizon, as_of_date()) ~ " as date)" %}
{%- set categories = category_values() %}

with rfm as (
    {{ feat_rfm_sql(cutoff) }}
),

order_features as (
    {{ feat_orders_sql(cutoff) }}
),

baskets as (
    {{ feat_baskets_sql(cutoff, categories) }}
),

behavior as (
    {{ feat_behavior_sql(cutoff) }}
),

features as (
    {{ customer_features_sql(cutoff, 'rfm', 'order_features', 'baskets', 'behavior', categories) }}
),

window_purchases as (
    select
        o.customer_id,
        count(*) as purchases,
        count(distinct cast(o.ordered_at as date)) as purchase_days,
        sum(o.amount) as spend
    from {{ ref('stg_shop__orders') }} as o
    where
        o.status not in {{ in_list(text_list_var('non_purchase_statuses')) }}
        and cast(o.ordered_at as date) > {{ cutoff }}
        and cast(o.ordered_at as date) <= {{ as_of_date() }}
    group by o.customer_id
)

select
    f.*,
    {{ horizon }} as horizon_days,
    coalesce(w.purchases, 0) = 0 as churned,
    coalesce(w.purchases, 0) > 0 as purchased,
    cast(coalesce(w.spend, 0) as double) as spend_in_window,
    -- purchase days, as lifetimes counts purchases (freq="D"): BG/NBD's holdout check
    cast(coalesce(w.purchase_days, 0) as bigint) as purchase_days_in_window
from features as f
left join window_purchases as w on f.customer_id = w.customer_id
where f.has_purchased
order by f.customer_id
