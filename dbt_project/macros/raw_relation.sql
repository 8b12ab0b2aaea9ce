{#-
    The raw table `table` (source shop.<table>), after checking the raw_schema and raw_tables
    vars that name it: every lookup or query of a raw table goes through here.
-#}
{% macro raw_relation(table) -%}
    {%- set tables = var('raw_tables', {}) -%}
    {%- if tables is none -%}{%- set tables = {} -%}{%- endif -%}
    {%- if tables is not mapping -%}
        {{ var_error('raw_tables', tables, "a mapping like {orders: shop_orders}") }}
    {%- endif -%}
    {%- for key in tables -%}
        {%- if key not in ['customers', 'orders', 'order_items', 'products', 'events'] -%}
            {{ var_error('raw_tables', key,
                "keyed by customers, orders, order_items, products or events") }}
        {%- endif -%}
    {%- endfor -%}
    {%- do plain_identifier(var('raw_schema', 'raw'), 'raw_schema') -%}
    {%- do plain_identifier(tables.get(table, table), 'raw_tables.' ~ table) -%}
    {{ return(source('shop', table)) }}
{%- endmacro %}
