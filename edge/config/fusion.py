"""Config of the store-wide fusion of several cameras into one track per person."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import StrictModel


class FusionConfig(StrictModel):
    """How the cameras' floor observations become one floor track per person.

    Times are in seconds and distances in metres, so one config holds at any frame
    rate and any camera layout. Only sites with two or more cameras fuse; a
    one-camera site tracks in the image as before.
    """

    pixel_noise: float = Field(0.04, gt=0, le=0.5, title="Box edge noise")
    """How far a detected box's edges wander, as a fraction of the person's height; turned into
    floor metres per sighting through the camera's homography, so a far person's position is trusted
    less than a near one's."""
    calibration_noise_m: float = Field(0.1, ge=0, le=2, title="Calibration error")
    """Floor error of a camera's calibration itself (metres, one sigma)."""
    acceleration_noise: float = Field(0.3, gt=0, le=50, title="Motion noise")
    """How quickly a walker may change speed (m/s², the floor motion model's process noise): higher
    follows turns, lower bridges gaps straighter."""
    gate_sigmas: float = Field(2.5, gt=1, le=10, title="Association gate")
    """A sighting can only join a person whose predicted position is within this many standard
    deviations (the person's and the sighting's uncertainty together)."""
    max_gate_m: float = Field(2.0, gt=0, le=10)
    """...and never further than this many metres, however uncertain."""
    clock_skew_s: float = Field(0.3, ge=0, le=5, title="Tolerated clock skew")
    """Cameras' frame times may still disagree by this much once each camera's delay is taken off
    (learn_camera_delays): a walker's speed times this is added to the association gate."""
    learn_camera_delays: bool = Field(True, title="Learn each camera's delay")
    """Learn how much later than the other cameras' each camera's pictures reach the box (RTSP
    buffering adds 0.2-2 s; a frame is stamped when it is read), from the people it sees with
    other cameras: a walker seen 0.7 m behind where the others place them, at 1.2 m/s, was seen
    0.6 s earlier than stamped. Each camera's frame times are corrected by it before the fusion
    picks a frame for an instant and matches its sightings. It starts from the camera's
    stream_delay_s. False: the configured delays only."""
    max_camera_delay_s: float = Field(2.0, gt=0, le=10, title="Longest camera delay")
    """Longest delay learnt for a camera (seconds); a sighting pair that implies a larger one is
    taken for two different people. Until a camera's delay is learnt, its sightings may be this
    late (at the association gate) along a walker's way. The live fusion waits for a late camera
    as long as its delay."""
    camera_delay_warn_s: float = Field(1.0, gt=0, le=10, title="Camera delay warning")
    """The fusion's health reads degraded while a camera's pictures are learnt to arrive more than
    this much later than the earliest camera's: corrected, but a stream that slow delays the
    count and its delay may change (check the camera's stream settings)."""
    calibration_unmatched_warn: float = Field(0.5, gt=0, le=1, title="Calibration check")
    """The fusion's health reads degraded, naming the pair, when more than this share of the people
    inside two cameras' views (where both should see them) is seen by one of the two only: their
    calibrations place one person at two places, counted twice. Missed boxes and occlusion leave
    some unmatched (each camera missing a share m of people leaves 2m / (1 + m): a third missed
    reads 0.5); WILDTRACK's pairs as calibrated read 0.00-0.10 on perfect boxes and 0.18-0.32 on
    degraded ones, with one camera moved 1.5 m 0.59-0.93 (docs/fusion.md)."""
    max_speed_mps: float | None = Field(3.0, gt=0, le=20, title="Fastest walker")
    """No one in a store moves faster than this (m/s; shoppers walk at 0.5-1.5 and rarely run over
    3): a sighting farther from where a person was last seen than this speed times the time since
    (plus the clock skew), by more than gate_sigmas of the two positions' uncertainty, is someone
    else's. Lower than 2.5 refuses real people's noisy steps (2.0 lost 1 % of WILDTRACK's line
    crossings). None: no limit."""
    continuity_bonus: float = Field(2.0, ge=0, le=20)
    """Preference (in squared standard deviations) for giving a sighting to the person its camera's
    own track was given last time."""
    new_person_confidence: float | None = Field(None, ge=0, le=1)
    """A new person starts only from sightings one of which scores at least this; weaker sightings
    still follow people already tracked (as ByteTrack's second stage). None: the tracker's
    new_track_threshold, the score that starts a track in one camera (it depends on the detector).
    """
    confirm_sightings: int = Field(2, ge=1, le=20)
    """Sightings (one per camera per instant) before a new person is reported: two cameras at once,
    or one camera twice in a row."""
    confirm_instants: int = Field(2, ge=1, le=20)
    """Instants in a row a new person must be seen at before being reported: false boxes of two
    cameras can meet once by chance, rarely twice."""
    lost_after_s: float = Field(1.5, gt=0, le=60)
    """A person a live camera should see but none does is gone after this."""
    blind_keep_s: float = Field(5.0, gt=0, le=600)
    """A person in a blind spot (no live camera's view) is kept this long, their motion carried on,
    to be picked up by the next camera."""
    report_unseen_s: float = Field(0.25, ge=0, le=60)
    """A person unseen in a covered area is still reported for this long."""
    camera_down_after_s: float = Field(3.0, gt=0, le=600)
    """A camera silent this long is down: people last seen in its area are held where they were,
    counted, never 'seen leaving' because a camera died."""
    down_hold_s: float = Field(300.0, gt=0, le=86400)
    """...for at most this long: then they are let go where they were last seen (their visit ends,
    occupancy stops counting them). A camera that restarts is back within a minute or two; one
    down for longer would otherwise keep its people in the store, and their visits open, until the
    service stops. Also how long a stopped fusion service, or a one-camera site's stopped camera
    worker, may be away and still resume its run with the people it had in view."""
    merge_distance_m: float = Field(0.5, ge=0, le=5)
    """Two people closer than this whom no camera ever sees apart are one person (a duplicate from
    one camera's calibration error)."""
    merge_after_s: float = Field(1.5, ge=0, le=60)
    """...for this long."""
    max_range_m: float = Field(40.0, gt=0, le=500)
    """A camera's footprint ends this far from its nearest floor point."""
    rate_fps: float = Field(5.0, gt=0, le=30, title="Fusion rate (live)")
    """Instants fused per second by the live fusion service."""
    latency_s: float = Field(1.0, ge=0, le=30, title="Wait for cameras (live)")
    """The live fusion service fuses an instant once the camera workers' service.flush_interval_s
    and this long have passed, so that every camera's frames of that instant have arrived (a camera
    worker stores its frames in batches, up to a flush interval after taking them, and needs time
    to detect); a frame that comes later is left out and counted late in the fusion's health."""
