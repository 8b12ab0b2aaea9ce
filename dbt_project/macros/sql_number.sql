{#-
    A non-negative (or, with positive=true, positive) finite number from a var or config as SQL
    text; anything else (text that is not a plain decimal number, inf) is a compile error naming
    the setting. `name` is the setting's name, for the message.
-#}
{% macro sql_number(value, name, positive=false) -%}
    {%- set text = value | string | trim -%}
    {%- set ok = value is not none and value is not boolean
        and modules.re.fullmatch('[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?', text)
        and (text | float) <= 1.0e300 and (not positive or (text | float) > 0) -%}
    {%- if not ok -%}
        {{ var_error(name, value, "a positive number" if positive else "a non-negative number") }}
    {%- endif -%}
    {{ text }}
{%- endmacro %}
