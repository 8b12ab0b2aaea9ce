{#- The interaction_half_life_days var, checked: none (no decay) or a positive number of days. -#}
{% macro interaction_half_life() -%}
    {%- set value = var('interaction_half_life_days', none) -%}
    {{ return(none if value is none else sql_number(value, 'interaction_half_life_days', positive=true)) }}
{%- endmacro %}
