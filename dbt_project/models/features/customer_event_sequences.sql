-- Customer event sequences for the sequence recommender: one row per customer x position, the
-- customer's latest N product events on or before as_of in time order (N = var sequence_length,
-- default 50; position 1 = the earliest kept event, the highest = the latest).
-- Tokens: every product event that is not the purchase event (product views, add-to-carts, ...)
-- from stg_shop__events, and one token per valid order line (int_order_lines, not cancelled or
-- returned), typed as the purchase_event var. Ties in time are ordered by product_id, then
-- event_type, the order pyprofile's SequenceRecommender gives its input.
-- Vars are checked before they become SQL: the length is a whole number, the event name an
-- escaped string literal.
{%- set sequence_length = sql_integer(var('sequence_length', 50), 'sequence_length', 1, 100000) %}
{%- set purchase_event = checked_text(var('purchase_event'), 'purchase_event') %}

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

order_lines as (
    select * from {{ ref('int_order_lines') }}
),

events as (
    select * from {{ ref('stg_shop__events') }}
),

purchases as (
    select
        l.customer_id,
        l.ordered_at as event_at,
        l.product_id,
        {{ sql_string(purchase_event) }} as event_type
    from order_lines as l
    cross join as_of as a
    where l.is_purchase and l.order_date <= a.as_of_date
),

product_events as (
    select
        e.customer_id,
        e.event_at,
        e.product_id,
        e.event_type
    from events as e
    cross join as_of as a
    where
        e.product_id is not null
        and e.event_type <> {{ sql_string(purchase_event) }}
        and cast(e.event_at as date) <= a.as_of_date
),

tokens as (
    select * from purchases
    union all
    select * from product_events
),

kept as (
    {{ latest_tokens('tokens', sequence_length) }}
)

select
    k.customer_id,
    cast(k.position as bigint) as position,
    k.event_at,
    k.product_id,
    k.event_type,
    cast(k.event_count as bigint) as event_count,
    a.as_of_date
from kept as k
cross join as_of as a
order by k.customer_id, k.position
