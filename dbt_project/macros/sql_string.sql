{#-
    A value as a SQL string literal, its quotes escaped (dbt.escape_single_quotes): the one way a
    var, config or data value (a status, an event type, a category, a table name) enters SQL text.
-#}
{% macro sql_string(value) -%}
    {{ return(adapter.dispatch('sql_string', 'pyprofile')(value)) }}
{%- endmacro %}

{% macro default__sql_string(value) -%}
    '{{ dbt.escape_single_quotes(value | string) }}'
{%- endmacro %}
