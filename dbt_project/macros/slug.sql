{#- A category name or event type as a safe column-name fragment (lower-case, [a-z0-9_]). -#}
{% macro slug(value) -%}
    {{- modules.re.sub('[^a-z0-9]+', '_', value | lower).strip('_') or 'blank' -}}
{%- endmacro %}
