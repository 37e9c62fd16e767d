"""Training on Cairn: xgboost with MLflow tracking, hyperparameter search, models logged with their
feature spec, batch scoring that looks features up itself, registration into the catalog.

    from pipelines.training import train_xgboost, search_xgboost, log_model, score_batch
    result = train_xgboost(cairn, training_set, registered_model_name="main.ml.churn")
    scored = score_batch(cairn, "models:/main.ml.churn/1", df)

Heavy libraries (mlflow, xgboost, sklearn, hyperopt) are imported inside the functions.
"""

from pipelines.training.logged import log_model
from pipelines.training.scoring import score_batch
from pipelines.training.search import search_xgboost
from pipelines.training.spec import FEATURE_SPEC_FILE, feature_spec
from pipelines.training.xgb import TrainResult, train_xgboost

__all__ = ["FEATURE_SPEC_FILE", "TrainResult", "feature_spec", "log_model", "score_batch", "search_xgboost", "train_xgboost"]
