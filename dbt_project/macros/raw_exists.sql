{#- True when the raw table exists (false at parse time). -#}
{% macro raw_exists(table) -%}
    {{ return(execute and load_relation(source('shop', table)) is not none) }}
{%- endmacro %}
