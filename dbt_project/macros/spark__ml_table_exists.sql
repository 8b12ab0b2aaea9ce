{#-
    Spark has no information_schema for its metastore: list the schema's tables and views (the
    library publishes each ml table as a view over its latest version).
-#}
{% macro spark__ml_table_exists(relation) -%}
    {%- set schemas = run_query('show databases').columns[0].values() | map('lower') | list -%}
    {%- if relation.schema | lower not in schemas -%}{{ return(false) }}{%- endif -%}
    {%- set query -%}
        show tables in {{ adapter.quote(relation.schema) }}
    {%- endset -%}
    {%- set names = run_query(query).columns[1].values() | map('lower') | list -%}
    {{ return(relation.identifier | lower in names) }}
{%- endmacro %}
