{#-
    Stop with one clear message naming a setting and the value it got (shortened, and written
    as a JSON string so that quotes, control characters and newlines stay on one line).
-#}
{% macro var_error(name, value, expected) -%}
    {%- set text = value | string -%}
    {%- if text | length > 60 -%}{%- set text = text[:57] ~ '...' -%}{%- endif -%}
    {{ exceptions.raise_compiler_error(
        "pyprofile: var " ~ name ~ " must be " ~ expected ~ ", got " ~ tojson(text)) }}
{%- endmacro %}
