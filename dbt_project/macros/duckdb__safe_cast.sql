{#- DuckDB has try_cast: a value that does not parse becomes null instead of failing the query. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
