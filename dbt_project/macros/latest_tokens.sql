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

{#- DuckDB keeps each customer's top `length` in the aggregate (max(x, n)) instead of sorting
    every token: the same rows, ordered by the struct's fields in turn. -#}
{% macro duckdb__latest_tokens(tokens, length) -%}
    select
        customer_id,
        token.event_at,
        token.product_id,
        token.event_type,
        event_count,
        len(latest) - from_latest + 1 as position
    from (
        select
            customer_id,
            event_count,
            latest,
            unnest(latest) as token,
            generate_subscripts(latest, 1) as from_latest
        from (
            select
                customer_id,
                count(*) as event_count,
                max(
                    {'event_at': event_at, 'product_id': product_id, 'event_type': event_type},
                    {{ length }}
                ) as latest
            from {{ tokens }}
            group by customer_id
        ) as top
    ) as kept
{%- endmacro %}
