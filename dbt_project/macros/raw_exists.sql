{#- True when the raw table exists (false at parse time). -#}
{% macro raw_exists(table) -%}
    {%- set relation = raw_relation(table) -%}
    {{ return(execute and load_relation(relation) is not none) }}
{%- endmacro %}
