"""Sync: k-anonymous store aggregates to the central platform over MQTT.

Closed windows are aggregated from the local database (:mod:`sync.aggregate`),
made k-anonymous (:mod:`sync.kanon`), checked against the versioned contract
(:mod:`sync.contract`) and written to a store-and-forward outbox
(:mod:`sync.outbox`) before a thin MQTT client (:mod:`sync.mqtt_client`) publishes
them; :mod:`sync.publisher` runs that loop. Signed config downlinks are handled by
:mod:`sync.downlink`; :mod:`sync.consumer` is the reference receiver.
"""
