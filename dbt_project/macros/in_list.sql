{#- A parenthesised list of string literals for `in (...)`, each value escaped (sql_string). -#}
{% macro in_list(values) -%}
    ({%- for v in values %}{{ sql_string(v) }}{{ "," if not loop.last }}{% endfor -%})
{%- endmacro %}
