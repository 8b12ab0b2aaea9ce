{#- Spark's way to fail a query with a message when the expression is evaluated. -#}
{% macro spark__sql_error(message) -%}
    raise_error({{ sql_string(message) }})
{%- endmacro %}
