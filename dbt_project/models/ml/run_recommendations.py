"""Fit the recommender on customer x product interactions; writes ml.recommendations and
ml.product_similarities (top 20 similar products per product).

Cold-start customers get their segment's popular products when ml.customer_segments exists.
The library writes its tables itself, atomically; this model returns a one-row run summary
(ml.run_recommendations). Settings come from this model's config in dbt_project.yml.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_product_interactions")  # lineage: run after these
    dbt.ref("customer_features")
    dbt.ref("run_segmentation")
    from pyprofile.dbt import run_step
    from pyprofile.flows.recommendations import pipeline_inputs, run_recommendations

    return run_step(
        "recommender",
        "ml.recommendations, ml.product_similarities",
        lambda: run_recommendations(
            session,
            k=int(dbt.config.get("k") or 10),
            method=dbt.config.get("method") or "auto",
            random_state=int(dbt.config.get("random_state") or 0),
            **pipeline_inputs(session),
        ),
        extra=["method"],
    )
