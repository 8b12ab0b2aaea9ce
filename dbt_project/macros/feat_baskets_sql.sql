{#-
    What each buying customer buys up to `as_of`: distinct products, basket size and the spend
    share of each category column (category_columns: categories whose names make one slug share
    a column; `other` takes the rest when the list is capped).

    Feature SQL is parameterised by the observation date so that the same logic serves scoring
    (at as_of) and point-in-time training (at as_of - horizon): `as_of` is a SQL expression of
    type date, and only data on or before it is read.
-#}
{% macro feat_baskets_sql(as_of, categories) -%}
{%- set named = [] -%}
{%- for col in category_columns(categories) %}{% do named.extend(col[1]) %}{% endfor -%}
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
    {%- for col in category_columns(categories) %},
    coalesce(
        cast(sum(case when category in {{ in_list(col[1]) }} then line_amount else 0 end) as double)
        / nullif(sum(line_amount), 0), 0
    ) as category_{{ col[0] }}_share
    {%- endfor %}
    {%- if categories | length >= max_categories() %},
    coalesce(
        cast(sum(case when category not in {{ in_list(named) }} then line_amount else 0 end)
            as double)
        / nullif(sum(line_amount), 0), 0
    ) as category_other_share
    {%- endif %}
from lines
group by customer_id
{%- endmacro %}
