{#-
    An ml output table, or an empty stand-in with the given [name, type] columns when the step
    that writes it was skipped (e.g. no order lines to recommend from), so the marts still build.
    The stand-in's columns carry the real table's types (never DuckDB's NULL type).
-#}
{% macro ml_source(table, columns) -%}
    {%- set relation = source('ml', table) -%}
    {%- set missing = execute and not ml_table_exists(relation) -%}
    {%- if missing -%}
        {{ log("pyprofile: " ~ relation ~ " does not exist; its columns are null in the marts", info=true) }}
        (
            select
            {%- for col in columns %}
                cast(null as {{ dbt.type_string() if col[1] == 'varchar' else col[1] }}) as {{ adapter.quote(col[0]) }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        )
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
