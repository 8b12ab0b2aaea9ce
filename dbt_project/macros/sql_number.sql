{#-
    A non-negative number from a var or config as SQL text, unchanged; anything else (text that
    is not a plain decimal number) is a compile error instead of becoming SQL. `name` is the
    setting's name, for the message. Checked at run time only (configs are not rendered yet
    when dbt parses a model).
-#}
{% macro sql_number(value, name) -%}
    {%- if execute and not modules.re.fullmatch('[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?', value | string | trim) -%}
        {{ exceptions.raise_compiler_error(
            "pyprofile: " ~ name ~ " must be a non-negative number, got " ~ value) }}
    {%- endif -%}
    {{ value | string | trim }}
{%- endmacro %}
