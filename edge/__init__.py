"""On-box runtime of the in-store analytics appliance.

Data flows one way: frames -> detections -> tracks -> floor trajectories -> visits
-> traits -> aggregates (``sync``) -> MQTT.
"""

__version__ = "0.1.0"
