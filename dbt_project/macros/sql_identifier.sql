{#-
    A name from a var or the data (e.g. a mapped column) as a quoted SQL identifier: the
    adapter's quote character, embedded quote characters doubled, so the name cannot end the
    identifier early. An empty name or one with a NUL character is a compile error.
-#}
{% macro sql_identifier(name, setting) -%}
    {%- set text = checked_text(name, setting) -%}
    {%- if text == '' -%}{{ var_error(setting, name, "a non-empty name") }}{%- endif -%}
    {%- set q = adapter.quote('')[:1] -%}
    {{ adapter.quote(text | replace(q, q ~ q)) }}
{%- endmacro %}
