"""Store-wide fusion: every camera's floor sightings into one track per person.

``observe`` (sightings with an uncertainty) -> ``tracker`` (the store-wide tracker)
over ``coverage`` (where each live camera looks) and ``motion`` (the floor motion
model); ``stage`` builds them from a site config for the replay and the live service.
"""
