{#- The observation date as a SQL expression: the `as_of` var, else the latest valid order date. -#}
{% macro as_of_date() -%}
    (select as_of_date from {{ ref('int_observation_date') }})
{%- endmacro %}
