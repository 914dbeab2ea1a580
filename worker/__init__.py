"""The pod-level master-worker: a FastAPI app served by gunicorn's arbiter."""
