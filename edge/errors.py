"""Typed errors of the library, translated once into one-line messages by the CLI.

Each message says what was expected, what was found and how to fix it, in plain
words: store IT reads them in the journal.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error a user can cause and fix."""


class ConfigError(EdgeError):
    """The site config is missing, unreadable or invalid."""


class CalibrationError(ConfigError):
    """A camera calibration cannot give a usable image-to-floor mapping."""


class ModelError(EdgeError):
    """A model file is missing, corrupt or of the wrong shape."""


class SourceError(EdgeError):
    """A video source cannot be opened or read."""


class DataFormatError(EdgeError):
    """An input file (ground truth, detections, trajectories, pcap) is malformed."""


class StorageError(EdgeError):
    """The local database cannot be opened or written (read-only, full disk...)."""


class OutputError(EdgeError):
    """An output file or folder cannot be written."""


class DataWarning(UserWarning):
    """Something in a user's input was fixed up or skipped (a duplicate row): the CLI
    prints it as one ``Warning:`` line."""
