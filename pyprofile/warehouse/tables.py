"""Every table and function name pyprofile reads or writes, defined once."""

from __future__ import annotations

# The schemas pyprofile creates in a warehouse (raw: `load` and the demo; the rest: dbt and the
# library). DuckDB cannot tell a schema from a database file of the same name.
SCHEMAS = ("raw", "staging", "features", "ml", "marts", "demo_truth")

# ---------------------------------------------------------------- inputs (the dbt project)
FEATURES = "features.customer_features"
TRAINING = "features.customer_training"
INTERACTIONS = "features.customer_product_interactions"
PRODUCTS = "staging.stg_shop__products"
RAW_PRODUCTS = "raw.products"

# ---------------------------------------------------------------- outputs of the ml flows
REGISTRY = "ml.model_registry"
SEGMENTS = "ml.customer_segments"
SEGMENT_PROFILES = "ml.segment_profiles"
SCORES = "ml.customer_scores"
SYNTHETIC = "ml.synthetic_customers"
SYNTHETIC_QUALITY = "ml.synthetic_quality"
RECOMMENDATIONS = "ml.recommendations"
PRODUCT_SIMILARITIES = "ml.product_similarities"
CUSTOMER_EMBEDDINGS = "ml.customer_embeddings"
SEQUENCES = "features.customer_event_sequences"

# ---------------------------------------------------------------- scoring functions
FUNCTION_SCHEMA = "ml"
SEGMENT_OF = "ml.segment_of"
SEGMENT_TABLE = "ml.segment_table"
CHURN_SCORE = "ml.churn_score"
PURCHASE_SCORE = "ml.purchase_score"
P_ALIVE = "ml.p_alive"
EXPECTED_PURCHASES = "ml.expected_purchases"
EXPECTED_VALUE = "ml.expected_value"
CLV_12M = "ml.clv_12m"

# ---------------------------------------------------------------- registry model names
SEGMENTER_MODEL = "segmenter"
SYNTHESIZER_MODEL = "synthesizer"
CHURN_MODEL = "churn"
PURCHASE_MODEL = "purchase"
BGNBD_MODEL = "bgnbd"
GAMMA_GAMMA_MODEL = "gamma_gamma"
SCORES_MODEL = "customer_scores"
RECOMMENDER_MODEL = "recommender"
SEQUENCE_MODEL = "sequence_recommender"
CHURN_EMBEDDER_MODEL = "churn_sequence_embedder"  # run_scoring(..., sequences=...)
SEGMENT_EMBEDDER_MODEL = "segment_sequence_embedder"  # run_segmentation(..., sequences=...)

# ---------------------------------------------------------------- the dbt ml steps' run logs
RUN_LOGS = {
    "synthesizer": "ml.run_synthesizer",
    "segmentation": "ml.run_segmentation",
    "scoring": "ml.run_scoring",
    "recommendations": "ml.run_recommendations",
}

# ---------------------------------------------------------------- what each ml step writes
# step (registry model name) -> (tables, scoring functions); a skipped step clears them so that
# no stale output of an earlier run is left next to fresh features.
STEP_OUTPUTS = {
    SYNTHESIZER_MODEL: ((SYNTHETIC, SYNTHETIC_QUALITY), ()),
    SEGMENTER_MODEL: ((SEGMENTS, SEGMENT_PROFILES), (SEGMENT_OF, SEGMENT_TABLE)),
    SCORES_MODEL: (
        (SCORES,),
        (CHURN_SCORE, PURCHASE_SCORE, P_ALIVE, EXPECTED_PURCHASES, EXPECTED_VALUE, CLV_12M),
    ),
    RECOMMENDER_MODEL: ((RECOMMENDATIONS, PRODUCT_SIMILARITIES), ()),
}
