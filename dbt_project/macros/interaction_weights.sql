{#-
    The interaction_weights var, checked: a mapping of interaction type (an event type, or
    `purchase` per unit bought) to a non-negative number, as [type, number text] pairs.
-#}
{% macro interaction_weights() -%}
    {%- set weights = var('interaction_weights') -%}
    {%- if weights is not mapping -%}
        {{ var_error('interaction_weights', weights, "a mapping like {product_view: 1, purchase: 5}") }}
    {%- endif -%}
    {%- set out = [] -%}
    {%- for kind, w in weights.items() -%}
        {%- set name = checked_text(kind, 'interaction_weights') -%}
        {%- do out.append([name, sql_number(w, 'interaction_weights[' ~ tojson(name) ~ ']')]) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}
