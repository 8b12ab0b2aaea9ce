{#-
    Spark reads backslash escapes in string literals (and '' as two adjacent literals): escape
    backslashes, then quotes, so that no value can end the literal early.
-#}
{% macro spark__sql_string(value) -%}
    '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}
