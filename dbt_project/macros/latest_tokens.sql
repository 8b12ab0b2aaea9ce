{#-
    Each customer's latest `length` rows of the CTE `tokens` (customer_id, event_at, product_id,
    event_type), ties in time ordered by product_id then event_type (descending from the
    latest), as rows with `position` (1 = the earliest kept) and `event_count` (all the
    customer's tokens). `length` is a checked integer.
-#}
{% macro latest_tokens(tokens, length) -%}
    {{ return(adapter.dispatch('latest_tokens', 'pyprofile')(tokens, length)) }}
{%- endmacro %}

{#- A window over every token: one sort of them all (Spark, and any engine without top-n). -#}
{% macro default__latest_tokens(tokens, length) -%}
    select
        customer_id,
        event_at,
        product_id,
        event_type,
        event_count,
        least(event_count, {{ length }}) - from_latest + 1 as position
    from (
        select
            customer_id,
            event_at,
            product_id,
            event_type,
            count(*) over (partition by customer_id) as event_count,
            row_number() over (
                partition by customer_id
                order by event_at desc, product_id desc, event_type desc
            ) as from_latest
        from {{ tokens }}
    ) as numbered
    where from_latest <= {{ length }}
{%- endmacro %}

{#- DuckDB first finds each customer's `length`-th latest time with a small top-n aggregate
    (max(event_at, n): n timestamps per customer), then numbers only the tokens from that
    time on: the same rows, one sort of about `length` tokens per customer instead of all. -#}
{% macro duckdb__latest_tokens(tokens, length) -%}
    select
        customer_id,
        event_at,
        product_id,
        event_type,
        event_count,
        least(event_count, {{ length }}) - from_latest + 1 as position
    from (
        select
            t.customer_id,
            t.event_at,
            t.product_id,
            t.event_type,
            c.event_count,
            row_number() over (
                partition by t.customer_id
                order by t.event_at desc, t.product_id desc, t.event_type desc
            ) as from_latest
        from {{ tokens }} as t
        inner join (
            select
                customer_id,
                count(*) as event_count,
                list_min(max(event_at, {{ length }})) as cutoff
            from {{ tokens }}
            group by customer_id
        ) as c
            on t.customer_id = c.customer_id and t.event_at >= c.cutoff
    ) as numbered
    where from_latest <= {{ length }}
{%- endmacro %}
