{#-
    Named RFM segment from R, F and M quintile scores (1-5). The rules use R and the rounded
    mean of F and M (fm); the same rules are published as the SQL macro in udfs/rfm_segment.sql.
-#}
{% macro rfm_segment(r, f, m) -%}
    {%- set fm = "floor((" ~ f ~ " + " ~ m ~ ") / 2.0 + 0.5)" -%}
    case
        when {{ r }} is null or {{ f }} is null or {{ m }} is null then 'No Purchases'
        when {{ r }} = 5 and {{ fm }} >= 4 then 'Champions'
        when {{ r }} between 3 and 4 and {{ fm }} >= 4 then 'Loyal Customers'
        when {{ r }} >= 4 and {{ fm }} between 2 and 3 then 'Potential Loyalist'
        when {{ r }} = 5 and {{ fm }} = 1 then 'New Customers'
        when {{ r }} = 4 and {{ fm }} = 1 then 'Promising'
        when {{ r }} = 3 and {{ fm }} = 3 then 'Need Attention'
        when {{ r }} = 3 and {{ fm }} <= 2 then 'About to Sleep'
        when {{ r }} <= 2 and {{ fm }} = 5 then {{ sql_string("Can't Lose Them") }}
        when {{ r }} <= 2 and {{ fm }} between 3 and 4 then 'At Risk'
        when {{ r }} = 1 and {{ fm }} = 1 then 'Lost'
        else 'Hibernating'
    end
{%- endmacro %}
