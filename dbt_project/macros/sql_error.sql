{#-
    A SQL expression that fails the query with `message` when it is evaluated (inside a CASE
    branch, only when that branch is taken). The message is a constant of the project, escaped.
-#}
{% macro sql_error(message) -%}
    {{ return(adapter.dispatch('sql_error', 'pyprofile')(message)) }}
{%- endmacro %}

{% macro default__sql_error(message) -%}
    error({{ sql_string(message) }})
{%- endmacro %}
