"""The live appliance: long-running services (camera workers, Wi-Fi sniffer, sync, web)
and the supervisor that runs them all for demos and tests."""
