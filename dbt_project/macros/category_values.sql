{#- The top-level categories that get a spend-share column: the `max_categories` biggest by spend. -#}
{% macro category_values() -%}
    {%- set limit = max_categories() -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set query -%}
        select category
        from {{ ref('int_order_lines') }}
        where is_purchase
        group by category
        order by sum(line_amount) desc, category
        limit {{ limit }}
    {%- endset -%}
    {%- set rows = run_query(query) -%}
    {{ return(rows.columns[0].values() | list) }}
{%- endmacro %}
