{#-
    Spark has try_cast too (dbt-spark's safe_cast is a plain cast, which fails the query on the
    first value that does not parse under ANSI SQL, Spark 4's default).
-#}
{% macro spark__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
