"""The seed's churn pipeline: raw events, the user activity features (full and incremental), labels
and point-in-time training sets, and the job that runs them on a schedule (job.yml)."""
