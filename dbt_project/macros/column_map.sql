{#-
    The column_map var's entry for raw table `table`: {contract column: raw column name}, each
    name checked to be text (it is quoted with sql_identifier where it is used).
-#}
{% macro column_map(table) -%}
    {%- set maps = var('column_map', {}) -%}
    {%- if maps is none -%}{%- set maps = {} -%}{%- endif -%}
    {%- if maps is not mapping -%}
        {{ var_error('column_map', maps, "a mapping like {orders: {amount: total}}") }}
    {%- endif -%}
    {%- for key in maps -%}
        {%- if key not in ['customers', 'orders', 'order_items', 'products', 'events'] -%}
            {{ var_error('column_map', key,
                "keyed by customers, orders, order_items, products or events") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set mapping = maps.get(table) or {} -%}
    {%- if mapping is not mapping -%}
        {{ var_error('column_map.' ~ table, mapping, "a mapping like {amount: total}") }}
    {%- endif -%}
    {%- set out = {} -%}
    {%- for column, raw_name in mapping.items() -%}
        {%- set name = checked_text(raw_name, 'column_map.' ~ table ~ '.' ~ column) -%}
        {%- if name | trim == '' -%}
            {{ var_error('column_map.' ~ table ~ '.' ~ column, raw_name, "a column name") }}
        {%- endif -%}
        {%- do out.update({column | string: name}) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}
