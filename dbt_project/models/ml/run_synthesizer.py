"""Train the tabular GAN on the feature table; write ml.synthetic_customers and ml.synthetic_quality.

The library writes its output tables itself, atomically; this model returns a one-row run
summary (ml.run_synthesizer). Settings come from this model's config in dbt_project.yml (dbt
Python models cannot call var()); only the ones that are set are passed, so every default is
the library's.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_features")  # lineage: run after the features
    from pyprofile.dbt import config_value, run_step
    from pyprofile.flows.synthesizer import run_synthesizer

    settings = {
        "table": config_value(dbt.config.get("source_table")),
        "rows": config_value(dbt.config.get("rows"), int),
        "epochs": config_value(dbt.config.get("epochs"), int),
        "max_steps": config_value(dbt.config.get("max_steps"), int),
        "batch_size": config_value(dbt.config.get("batch_size"), int),
        "label": config_value(dbt.config.get("label")),
        "random_state": config_value(dbt.config.get("random_state"), int),
    }
    options = {name: value for name, value in settings.items() if value is not None}
    return run_step(
        "synthesizer",
        "ml.synthetic_customers, ml.synthetic_quality",
        lambda: run_synthesizer(session, **options),
        session=session,
    )
