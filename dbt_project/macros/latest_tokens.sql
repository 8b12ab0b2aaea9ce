{#-
    Each customer's latest `length` rows of the CTE `tokens` (customer_id, event_at, product_id,
    event_type), ties in time ordered by product_id then event_type (descending from the
    latest), as rows with `position` (1 = the earliest kept) and `event_count` (all the
    customer's tokens). `length` is a checked integer. The numbering is written once here; the
    engines differ only in which tokens they number (latest_candidates).
-#}
{% macro latest_tokens(tokens, length) -%}
    select
        customer_id,
        event_at,
        product_id,
        event_type,
        event_count,
        least(event_count, {{ length }}) - from_latest + 1 as position
    from (
        select
            c.customer_id,
            c.event_at,
            c.product_id,
            c.event_type,
            c.event_count,
            row_number() over (
                partition by c.customer_id
                order by c.event_at desc, c.product_id desc, c.event_type desc
            ) as from_latest
        from ({{ adapter.dispatch('latest_candidates', 'pyprofile')(tokens, length) }}) as c
    ) as numbered
    where from_latest <= {{ length }}
{%- endmacro %}

{#- Every token, with its customer's count (Spark, and any engine without a top-n aggregate):
    the numbering then sorts them all. -#}
{% macro default__latest_candidates(tokens, length) -%}
    select
        customer_id,
        event_at,
        product_id,
        event_type,
        count(*) over (partition by customer_id) as event_count
    from {{ tokens }}
{%- endmacro %}

{#- DuckDB first finds each customer's `length`-th latest time with a small top-n aggregate
    (max(event_at, n): n timestamps per customer) and keeps only the tokens from that time on:
    the numbering sorts about `length` tokens per customer instead of all of them. -#}
{% macro duckdb__latest_candidates(tokens, length) -%}
    select
        t.customer_id,
        t.event_at,
        t.product_id,
        t.event_type,
        c.event_count
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
{%- endmacro %}
