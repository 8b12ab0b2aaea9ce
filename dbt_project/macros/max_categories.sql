{#- The max_categories var, checked: a whole number from 0 to 1000. -#}
{% macro max_categories() -%}
    {{ return(sql_integer(var('max_categories'), 'max_categories', 0, 1000) | int) }}
{%- endmacro %}
