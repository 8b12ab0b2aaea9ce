-- One row per customer for BI: features, RFM segment, learned segment and persona, scores and
-- the top three recommended products. Contracted (marts/_marts.yml): every column has a BI-safe
-- type, so the ml columns are cast whatever type the library wrote them with.
{% if target.type != 'spark' %}-- depends_on: {{ ref('run_segmentation') }}{% endif %}
{% if target.type != 'spark' %}-- depends_on: {{ ref('run_scoring') }}{% endif %}
{% if target.type != 'spark' %}-- depends_on: {{ ref('run_recommendations') }}{% endif %}
with features as (
    select * from {{ ref('customer_features') }}
),

segments as (
    select * from {{ ml_source('customer_segments', [
        ['customer_id', customer_key_type()], ['segment_id', 'bigint'],
        ['segment_name', 'varchar'], ['distance_to_centroid', 'double'], ['map_x', 'double'],
        ['map_y', 'double']]) }}
),

scores as (
    select * from {{ ml_source('customer_scores', [
        ['customer_id', customer_key_type()], ['churn_probability', 'double'],
        ['purchase_probability', 'double'], ['churn_reason_1', 'varchar'],
        ['churn_reason_2', 'varchar'], ['churn_reason_3', 'varchar'], ['p_alive', 'double'],
        ['expected_purchases_90d', 'double'], ['expected_avg_order_value', 'double'],
        ['clv_12m', 'double']]) }}
),

top_products as (
    select
        customer_id,
        max(case when rank = 1 then product_id end) as top_product_1,
        max(case when rank = 2 then product_id end) as top_product_2,
        max(case when rank = 3 then product_id end) as top_product_3
    from {{ ml_source('recommendations', [
        ['customer_id', customer_key_type()], ['rank', 'integer'], ['product_id', 'varchar']]) }}
    where rank <= 3
    group by customer_id
)

select
    f.customer_id,
    f.as_of_date,
    cast(f.age as bigint) as age,
    f.gender,
    f.income_band,
    f.region,
    f.channel,
    cast(f.tenure_days as bigint) as tenure_days,
    f.has_purchased,
    f.first_order_date,
    f.last_order_date,
    cast(f.recency_days as bigint) as recency_days,
    cast(f.order_count as bigint) as order_count,
    f.monetary_amount,
    f.avg_order_amount,
    f.avg_days_between_orders,
    f.spend_90d_amount,
    f.spend_trend,
    f.return_rate,
    f.discount_share,
    f.session_count,
    cast(f.days_since_last_visit as bigint) as days_since_last_visit,
    cast(f.r_score as bigint) as r_score,
    cast(f.f_score as bigint) as f_score,
    cast(f.m_score as bigint) as m_score,
    f.rfm_segment,
    cast(s.segment_id as bigint) as segment_id,
    cast(s.segment_name as {{ dbt.type_string() }}) as segment_name,
    cast(s.distance_to_centroid as double) as segment_distance,
    cast(s.map_x as double) as segment_map_x,
    cast(s.map_y as double) as segment_map_y,
    cast(sc.churn_probability as double) as churn_probability,
    cast(sc.purchase_probability as double) as purchase_probability,
    cast(sc.churn_reason_1 as {{ dbt.type_string() }}) as churn_reason_1,
    cast(sc.churn_reason_2 as {{ dbt.type_string() }}) as churn_reason_2,
    cast(sc.churn_reason_3 as {{ dbt.type_string() }}) as churn_reason_3,
    cast(sc.p_alive as double) as p_alive,
    cast(sc.expected_purchases_90d as double) as expected_purchases_90d,
    cast(sc.expected_avg_order_value as double) as expected_avg_order_value,
    cast(sc.clv_12m as double) as clv_12m,
    cast(t.top_product_1 as {{ dbt.type_string() }}) as top_product_1,
    cast(t.top_product_2 as {{ dbt.type_string() }}) as top_product_2,
    cast(t.top_product_3 as {{ dbt.type_string() }}) as top_product_3
from features as f
left join segments as s on f.customer_id = s.customer_id
left join scores as sc on f.customer_id = sc.customer_id
left join top_products as t on f.customer_id = t.customer_id
