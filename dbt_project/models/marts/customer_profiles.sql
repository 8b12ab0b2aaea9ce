-- One row per customer for BI: features, RFM segment, learned segment and persona, scores and
-- the top three recommended products.
-- depends_on: {{ ref('run_segmentation') }}
-- depends_on: {{ ref('run_scoring') }}
-- depends_on: {{ ref('run_recommendations') }}
with features as (
    select * from {{ ref('customer_features') }}
),

segments as (
    select * from {{ ml_source('customer_segments', [
        ['customer_id', 'varchar'], ['segment_id', 'integer'], ['segment_name', 'varchar'],
        ['distance_to_centroid', 'double'], ['map_x', 'double'], ['map_y', 'double']]) }}
),

scores as (
    select * from {{ ml_source('customer_scores', [
        ['customer_id', 'varchar'], ['churn_probability', 'double'],
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
        ['customer_id', 'varchar'], ['rank', 'integer'], ['product_id', 'varchar']]) }}
    where rank <= 3
    group by customer_id
)

select
    f.customer_id,
    f.as_of_date,
    f.age,
    f.gender,
    f.income_band,
    f.region,
    f.channel,
    f.tenure_days,
    f.has_purchased,
    f.first_order_date,
    f.last_order_date,
    f.recency_days,
    f.order_count,
    f.monetary_amount,
    f.avg_order_amount,
    f.avg_days_between_orders,
    f.spend_90d_amount,
    f.spend_trend,
    f.return_rate,
    f.discount_share,
    f.session_count,
    f.days_since_last_visit,
    f.r_score,
    f.f_score,
    f.m_score,
    f.rfm_segment,
    s.segment_id,
    s.segment_name,
    s.distance_to_centroid as segment_distance,
    s.map_x as segment_map_x,
    s.map_y as segment_map_y,
    sc.churn_probability,
    sc.purchase_probability,
    sc.churn_reason_1,
    sc.churn_reason_2,
    sc.churn_reason_3,
    sc.p_alive,
    sc.expected_purchases_90d,
    sc.expected_avg_order_value,
    sc.clv_12m,
    t.top_product_1,
    t.top_product_2,
    t.top_product_3
from features as f
left join segments as s on f.customer_id = s.customer_id
left join scores as sc on f.customer_id = sc.customer_id
left join top_products as t on f.customer_id = t.customer_id
