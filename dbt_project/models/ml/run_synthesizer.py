"""Train the tabular GAN on the feature table; write ml.synthetic_customers and ml.synthetic_quality.

The library writes its output tables itself, atomically; this model returns a one-row run
summary (ml.run_synthesizer). Settings come from this model's config in dbt_project.yml, since
dbt Python models cannot call var().
"""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_features")  # lineage: run after the features
    from pyprofile.dbt import config_value as _value
    from pyprofile.dbt import run_step
    from pyprofile.flows.synthesizer import run_synthesizer

    table = _value(dbt.config.get("source_table")) or "features.customer_features"
    return run_step(
        "synthesizer",
        "ml.synthetic_customers, ml.synthetic_quality",
        lambda: run_synthesizer(
            session,
            table,
            _value(dbt.config.get("rows"), int),
            epochs=_value(dbt.config.get("epochs"), int),
            batch_size=_value(dbt.config.get("batch_size"), int),
            label=_value(dbt.config.get("label")),
            random_state=_value(dbt.config.get("random_state"), int) or 0,
        ),
    )
