{#-
    A whole number from a var or config, between min_value and max_value, as SQL text; anything
    else (text, a fraction, a number out of range) is a compile error naming the setting.
-#}
{% macro sql_integer(value, name, min_value, max_value) -%}
    {%- set text = value | string | trim -%}
    {%- if value is none or value is boolean or not modules.re.fullmatch('-?[0-9]{1,18}', text)
        or (text | int) < min_value or (text | int) > max_value -%}
        {{ var_error(name, value, "a whole number from " ~ min_value ~ " to " ~ max_value) }}
    {%- endif -%}
    {{ text | int }}
{%- endmacro %}
