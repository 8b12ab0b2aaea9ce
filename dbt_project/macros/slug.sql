{#-
    A category name or event type as a safe column-name fragment: lower-case [a-z0-9_], starting
    with a letter, at most 40 characters. Names with no such characters, or longer ones, get 8
    hex digits of their MD5 so that different names stay apart ('blank' for an empty name).
-#}
{% macro slug(value) -%}
    {%- set text = value | string -%}
    {%- set s = modules.re.sub('[^a-z0-9]+', '_', text | lower).strip('_') -%}
    {%- if s == '' and text | trim != '' -%}
        {%- set s = 'x' ~ local_md5(text)[:8] -%}
    {%- elif s | length > 40 -%}
        {%- set s = s[:31].rstrip('_') ~ '_' ~ local_md5(text)[:8] -%}
    {%- endif -%}
    {%- if s == '' -%}{%- set s = 'blank' -%}{%- endif -%}
    {%- if modules.re.match('[0-9]', s) -%}{%- set s = 'n' ~ s -%}{%- endif -%}
    {{- s -}}
{%- endmacro %}
