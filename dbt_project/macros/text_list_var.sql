{#-
    A var holding a list of text values (e.g. order statuses), each checked (checked_text);
    a single text value is a one-item list.
-#}
{% macro text_list_var(name) -%}
    {%- set value = var(name) -%}
    {%- if value is string or value is number -%}{%- set value = [value] -%}{%- endif -%}
    {%- if value is none or value is mapping or value is not iterable -%}
        {{ var_error(name, value, "a list of text values") }}
    {%- endif -%}
    {%- set out = [] -%}
    {%- for v in value -%}
        {%- do out.append(checked_text(v, name ~ "[" ~ loop.index0 ~ "]")) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}
