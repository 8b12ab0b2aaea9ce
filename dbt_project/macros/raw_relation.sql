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
    {#- DuckDB cannot create a view over schema X of a database file named X.duckdb
        ("ambiguous reference to catalog or schema"): say so before anything runs -#}
    {%- if target.type == 'duckdb'
            and (var('raw_schema', 'raw') | lower) == (target.database | lower) -%}
        {{ var_error('raw_schema', var('raw_schema', 'raw'),
            "a schema not named like the warehouse file " ~ target.database
            ~ ".duckdb (DuckDB cannot build views over it): rename the file or the schema") }}
    {%- endif -%}
    {%- do plain_identifier(tables.get(table, table), 'raw_tables.' ~ table) -%}
    {{ return(source('shop', table)) }}
{%- endmacro %}
