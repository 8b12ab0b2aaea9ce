{#-
    A parenthesised list of string literals for `in (...)`, each value escaped (sql_string).
    An empty list is an empty subquery, so `x in ...` is false and `x not in ...` true.
-#}
{% macro in_list(values) -%}
    {%- if values | length == 0 -%}
        (select cast(null as {{ dbt.type_string() }}) where 1 = 0)
    {%- else -%}
        ({%- for v in values %}{{ sql_string(v) }}{{ "," if not loop.last }}{% endfor -%})
    {%- endif -%}
{%- endmacro %}
