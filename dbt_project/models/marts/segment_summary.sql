-- One row per learned segment for dashboards: size, revenue, value and risk, and its persona.
-- Contracted (marts/_marts.yml): the persona columns are cast to BI-safe types.
{% if target.type != 'spark' %}-- depends_on: {{ ref('run_segmentation') }}{% endif %}
with profiles as (
    select * from {{ ref('customer_profiles') }}
),

personas as (
    select * from {{ ml_source('segment_profiles', [
        ['segment_id', 'bigint'], ['segment_name', 'varchar'], ['description', 'varchar']]) }}
),

totals as (
    select
        count(*) as customers,
        sum(monetary_amount) as revenue
    from profiles
),

per_segment as (
    select
        segment_id,
        count(*) as customers,
        sum(monetary_amount) as revenue_amount,
        avg(monetary_amount) as avg_revenue_amount,
        avg(order_count) as avg_orders,
        avg(recency_days) as avg_recency_days,
        avg(churn_probability) as avg_churn_probability,
        avg(clv_12m) as avg_clv_12m,
        sum(clv_12m) as total_clv_12m
    from profiles
    where segment_id is not null
    group by segment_id
),

rfm_mode as (
    select
        segment_id,
        rfm_segment,
        row_number() over (
            partition by segment_id order by count(*) desc, rfm_segment
        ) as rank_in_segment
    from profiles
    where segment_id is not null
    group by segment_id, rfm_segment
)

select
    p.segment_id,
    cast(n.segment_name as {{ dbt.type_string() }}) as segment_name,
    p.customers,
    cast(p.customers as double) / t.customers as customer_share,
    p.revenue_amount,
    cast(p.revenue_amount as double) / nullif(t.revenue, 0) as revenue_share,
    p.avg_revenue_amount,
    p.avg_orders,
    p.avg_recency_days,
    p.avg_churn_probability,
    p.avg_clv_12m,
    p.total_clv_12m,
    r.rfm_segment as dominant_rfm_segment,
    cast(n.description as {{ dbt.type_string() }}) as persona
from per_segment as p
cross join totals as t
left join personas as n on p.segment_id = n.segment_id
left join rfm_mode as r on p.segment_id = r.segment_id and r.rank_in_segment = 1
