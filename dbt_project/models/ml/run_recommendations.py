"""Fit the recommender on customer x product interactions; writes ml.recommendations and
ml.product_similarities (top 20 similar products per product).

Cold-start customers get their segment's popular products when ml.customer_segments exists.
The library writes its tables itself, atomically; this model returns a one-row run summary
(ml.run_recommendations). Settings come from this model's config in dbt_project.yml; only the
ones that are set are passed, so every default is the library's.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_product_interactions")  # lineage: run after these
    dbt.ref("customer_features")
    dbt.ref("customer_event_sequences")  # the sequence model's events (ml.customer_embeddings)
    dbt.ref("run_segmentation")
    from pyprofile.dbt import config_value, run_step
    from pyprofile.flows.recommendations import pipeline_inputs, run_recommendations

    settings = {
        "k": config_value(dbt.config.get("k"), int),
        "method": config_value(dbt.config.get("method")),
        "random_state": config_value(dbt.config.get("random_state"), int),
    }
    options = {name: value for name, value in settings.items() if value is not None}
    return run_step(
        "recommender",
        "ml.recommendations, ml.product_similarities",
        lambda: run_recommendations(session, **options, **pipeline_inputs(session)),
        extra=["method"],
        session=session,
    )
