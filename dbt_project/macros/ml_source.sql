{#-
    An ml output table, or an empty stand-in with the given [name, type] columns when the step
    that writes it was skipped (e.g. no order lines to recommend from), so the marts still build.
-#}
{% macro ml_source(table, columns) -%}
    {%- set relation = source('ml', table) -%}
    {#- ask the database, not dbt's relation cache: the library writes these tables itself -#}
    {%- set missing = false -%}
    {%- if execute -%}
        {%- set found = run_query(
            "select count(*) from information_schema.tables where table_schema = '"
            ~ relation.schema ~ "' and table_name = '" ~ relation.identifier ~ "'") -%}
        {%- set missing = found.columns[0].values()[0] == 0 -%}
    {%- endif -%}
    {%- if missing -%}
        {{ log("pyprofile: " ~ relation ~ " does not exist; its columns are null in the marts", info=true) }}
        (
            select
            {%- for col in columns %}
                cast(null as {{ col[1] }}) as {{ col[0] }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        )
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
