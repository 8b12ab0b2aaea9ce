-- Events condensed once: one row per customer x session x day with event counts per type and
-- funnel flags. Behaviour features at any date read this instead of every event, and the same
-- per-day grain keeps them exactly point in time. Incremental: a build processes only days on or
-- after the latest one already here (appended data); `--full-refresh` rebuilds it all.
with events as (
    select
        customer_id,
        session_id,
        event_type,
        cast(event_at as date) as event_date
    from {{ ref('stg_shop__events') }}
    {%- if is_incremental() %}
    where cast(event_at as date) >= (select max(t.event_date) from {{ this }} as t)
    {%- endif %}
)

select
    customer_id,
    session_id,
    event_date,
    {%- for t in var('event_types') %}
    sum(case when event_type = {{ sql_string(t) }} then 1 else 0 end) as {{ slug(t) }}_events,
    {%- endfor %}
    max(case when event_type = {{ sql_string(var('view_event')) }} then 1 else 0 end) as has_view,
    max(case when event_type = {{ sql_string(var('cart_event')) }} then 1 else 0 end) as has_cart,
    max(case when event_type = {{ sql_string(var('purchase_event')) }} then 1 else 0 end)
        as has_purchase
from events
group by customer_id, session_id, event_date
