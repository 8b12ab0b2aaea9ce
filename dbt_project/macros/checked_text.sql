{#-
    A var's text value (a string or a number, as YAML may give it), checked: not a list,
    mapping, boolean or null, and free of NUL characters. It still enters SQL only through
    sql_string (a value) or slug (a column-name fragment).
-#}
{% macro checked_text(value, name) -%}
    {%- if value is none or value is boolean or value is mapping
        or (value is iterable and value is not string) -%}
        {{ var_error(name, value, "a text value") }}
    {%- endif -%}
    {%- set text = value | string -%}
    {%- if modules.re.search('\\x00', text) -%}
        {{ var_error(name, value, "text without NUL characters") }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}
