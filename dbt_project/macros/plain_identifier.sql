{#-
    A schema or table name from a var, checked to be a plain identifier (letters, digits and
    underscores, not starting with a digit): dbt writes source names into SQL, quoted but not
    escaped, so nothing else may get there.
-#}
{% macro plain_identifier(value, name) -%}
    {%- if value is not string or not modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_]*', value) -%}
        {{ var_error(name, value, "a name of letters, digits and underscores") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
