"""Till transaction counts (``edge pos import``, ``POST /admin/pos``) and conversion."""
