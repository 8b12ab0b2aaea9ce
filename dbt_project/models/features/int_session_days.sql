-- Events condensed once: one row per customer x session x day with event counts per type and
-- funnel flags. Behaviour features at any date read this instead of every event, and the same
-- per-day grain keeps them exactly point in time. Incremental: a build processes only days on or
-- after the latest one already here (appended data); `--full-refresh` rebuilds it all.
{%- set view_event = checked_text(var('view_event'), 'view_event') %}
{%- set cart_event = checked_text(var('cart_event'), 'cart_event') %}
{%- set purchase_event = checked_text(var('purchase_event'), 'purchase_event') %}
{#- the vars that shape the rows: when they change, the table is rebuilt (reset_changed_settings) -#}
{%- set settings = local_md5(tojson(
    [event_type_columns(), view_event, cart_event, purchase_event, min_valid_date()])) %}
{{ config(settings_md5=settings, pre_hook="{{ reset_changed_settings() }}") }}
with events as (
    select
        customer_id,
        session_id,
        event_type,
        cast(event_at as date) as event_date
    from {{ ref('stg_shop__events') }}
    {%- if is_incremental() %}
    -- from the latest day already here; every day when the table is empty
    where
        cast(event_at as date)
        >= coalesce((select max(t.event_date) from {{ this }} as t), cast(event_at as date))
    {%- endif %}
)

select
    customer_id,
    session_id,
    event_date,
    {%- for t in event_type_columns() %}
    sum(case when event_type = {{ sql_string(t[0]) }} then 1 else 0 end) as {{ t[1] }}_events,
    {%- endfor %}
    max(case when event_type = {{ sql_string(view_event) }} then 1 else 0 end) as has_view,
    max(case when event_type = {{ sql_string(cart_event) }} then 1 else 0 end) as has_cart,
    max(case when event_type = {{ sql_string(purchase_event) }} then 1 else 0 end)
        as has_purchase,
    {{ sql_string(settings) }} as settings_md5
from events
group by customer_id, session_id, event_date
