"""Wi-Fi probe-request counting, anonymized at capture."""
