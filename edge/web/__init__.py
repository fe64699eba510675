"""The local status page for store associates: FastAPI app, REST API, /metrics.

Build it with :func:`edge.web.app.create_app`; serve it with ``edge web serve``.
"""
