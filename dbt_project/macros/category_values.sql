{#- The top-level categories that get a spend-share column: the `max_categories` biggest by spend. -#}
{% macro category_values() -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set query -%}
        select coalesce(p.category, 'unknown') as category
        from {{ ref('stg_shop__order_items') }} as i
        left join {{ ref('stg_shop__products') }} as p on i.product_id = p.product_id
        group by 1
        order by sum(i.quantity * i.unit_price) desc, 1
        limit {{ var('max_categories') }}
    {%- endset -%}
    {%- set rows = run_query(query) -%}
    {{ return(rows.columns[0].values() | list) }}
{%- endmacro %}

{#- A category name as a safe column-name fragment. -#}
{% macro slug(value) -%}
    {{- modules.re.sub('[^a-z0-9]+', '_', value | lower).strip('_') or 'blank' -}}
{%- endmacro %}
