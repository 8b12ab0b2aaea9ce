{#-
    Order behaviour per customer with an order on or before `as_of`: days between purchases,
    spend in the last 90 days and the 90 before, their trend, return rate and discount share.

    Feature SQL is parameterised by the observation date so that the same logic serves scoring
    (at as_of) and point-in-time training (at as_of - horizon): `as_of` is a SQL expression of
    type date, and only data on or before it is read.
-#}
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
        o.status in {{ in_list(text_list_var('returned_statuses')) }} as is_returned,
        o.status in {{ in_list(text_list_var('cancelled_statuses')) }} as is_cancelled,
        o.status not in {{ in_list(text_list_var('non_purchase_statuses')) }} as is_purchase
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
