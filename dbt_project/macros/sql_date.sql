{#-
    A date from a var (YYYY-MM-DD, a real calendar day) as a SQL date expression; anything else
    is a compile error naming the var, so no other text reaches SQL. `name` is the var's name.
-#}
{% macro sql_date(value, name) -%}
    {%- set text = value | string | trim -%}
    {%- set m = modules.re.fullmatch('([0-9]{4})-([0-9]{2})-([0-9]{2})', text) -%}
    {%- if value is none or value is boolean or not m -%}
        {{ var_error(name, value, "a date YYYY-MM-DD") }}
    {%- endif -%}
    {%- set y, mo, d = m.group(1) | int, m.group(2) | int, m.group(3) | int -%}
    {%- set leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 -%}
    {%- set month_days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] -%}
    {%- if y < 1 or mo < 1 or mo > 12 or d < 1 or d > month_days[mo - 1] -%}
        {{ var_error(name, value, "a date YYYY-MM-DD") }}
    {%- endif -%}
    cast('{{ text }}' as date)
{%- endmacro %}
