{#-
    The min_valid_date var (YYYY-MM-DD, checked by sql_date) as a SQL timestamp: order, event and
    sign-up times before it are implausible (e.g. 0001-01-01 placeholders).
-#}
{% macro min_valid_date() -%}
    cast({{ sql_date(var('min_valid_date', '1970-01-01'), 'min_valid_date') }} as timestamp)
{%- endmacro %}
