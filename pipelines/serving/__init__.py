"""Model serving: the runtime `cairn serve` answers endpoint invocations with.

Endpoints themselves are governed catalog objects (catalog/service/serving.py); this package loads
their model versions, looks features up in the online store, splits traffic, scales idle entities
to zero and logs every request to the endpoint's inference table. See `runtime.ServingRuntime`.
"""
