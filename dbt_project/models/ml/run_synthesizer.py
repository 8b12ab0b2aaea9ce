"""Train the tabular GAN on the feature table; write ml.synthetic_customers and ml.synthetic_quality.

The library writes its output tables itself, atomically; this model returns a one-row run
summary (ml.run_synthesizer). Settings come from this model's config in dbt_project.yml, since
dbt Python models cannot call var().
"""


def _value(raw, cast=str):
    return None if raw in (None, "", "none", "None") else cast(raw)


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_features")  # lineage: run after the features
    import pyarrow as pa

    from pyprofile.synth.flow import run_synth

    table = _value(dbt.config.get("source_table")) or "features.customer_features"
    summary = run_synth(
        session,
        table,
        _value(dbt.config.get("rows"), int),
        epochs=_value(dbt.config.get("epochs"), int),
        batch_size=_value(dbt.config.get("batch_size"), int),
        label=_value(dbt.config.get("label")),
        random_state=_value(dbt.config.get("random_state"), int) or 0,
    )
    return pa.table(
        {
            "model": ["synthesizer"],
            "model_version": [summary.get("model_version")],
            "source_table": [table],
            "rows_written": [summary.get("rows")],
            "output_tables": ["ml.synthetic_customers, ml.synthetic_quality"],
        }
    )
