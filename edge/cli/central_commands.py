"""``edge sync`` on the central platform's side: receive the boxes' aggregates (the
reference consumer, the PostgreSQL ingestion), find the windows missing centrally, refit
the segments, sign config downlinks.

Listed under ``edge sync`` by :data:`edge.cli.sync_commands.CENTRAL_COMMANDS`, and
imported only when one of them runs or ``--help`` lists them.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass, fields
from pathlib import Path

import click

from edge.cli.options import on_stop_signals, utc_day
from edge.config.sync import MqttConfig, TlsConfig
from edge.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ReceiverBroker:
    """The broker options of a central-side receiver (consume, ingest)."""

    host: str
    port: int
    username: str | None
    password_env: str
    ca_file: str | None
    cert_file: str | None
    key_file: str | None

    def config(self, *, what: str) -> MqttConfig:
        """The broker settings; ``what`` names the receiver in an error."""
        from pydantic import ValidationError

        try:
            tls = (
                TlsConfig(ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file)
                if (self.ca_file or self.cert_file)
                else None
            )
            return MqttConfig(
                host=self.host,
                port=self.port,
                username=self.username,
                password=os.environ.get(self.password_env) if self.username else None,
                tls=tls,
            )
        except ValidationError as error:
            raise ConfigError(f"invalid {what} options: {error.errors()[0]['msg']}") from None


BROKER_PARAMS = tuple(field.name for field in fields(ReceiverBroker))


def receiver_options(default_client_id: str):
    """The broker options ``consume`` and ``ingest`` share: ``--prefix`` and
    ``--client-id`` reach the command as such, the others as one ``broker``
    (:class:`ReceiverBroker`)."""

    def decorate(command):
        @functools.wraps(command)
        def gathered(**params):
            broker = ReceiverBroker(**{name: params.pop(name) for name in BROKER_PARAMS})
            return command(broker=broker, **params)

        for option in reversed(
            [
                click.option("--host", default="localhost", show_default=True, help="Broker host."),
                click.option(
                    "--port", type=int, default=1883, show_default=True, help="Broker port."
                ),
                click.option(
                    "--prefix",
                    default="store-edge",
                    show_default=True,
                    help="Topic prefix of the boxes.",
                ),
                click.option(
                    "--client-id",
                    default=default_client_id,
                    show_default=True,
                    help="Stable client id: the broker keeps its session (and queued messages).",
                ),
                click.option("--username", default=None, help="Broker user."),
                click.option(
                    "--password-env",
                    default="EDGE_CONSUMER_PASSWORD",
                    show_default=True,
                    help="Environment variable holding the broker password.",
                ),
                click.option(
                    "--ca-file",
                    type=click.Path(dir_okay=False),
                    default=None,
                    help="CA bundle: use TLS.",
                ),
                click.option(
                    "--cert-file",
                    type=click.Path(dir_okay=False),
                    default=None,
                    help="Client certificate.",
                ),
                click.option(
                    "--key-file", type=click.Path(dir_okay=False), default=None, help="Client key."
                ),
            ]
        ):
            gathered = option(gathered)
        return gathered

    return decorate


@click.command("consume")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The consumer's own SQLite file.",
)
@receiver_options("edge-reference-consumer")
@click.option("--store", default="+", show_default=True, help="One store id, or + for all.")
@click.option("--delay", "delay_s", type=float, default=0.0, help="Sleep per message (testing).")
def consume_command(
    db_path: Path, broker: ReceiverBroker, prefix: str, store: str, client_id: str, delay_s: float
) -> None:
    """Reference consumer: receive aggregates, validate them, store each id once."""
    from sync.consumer import ReferenceConsumer, check_topic_segments

    check_topic_segments(prefix, store, names=("--prefix", "--store"))
    config = broker.config(what="consumer")
    consumer = ReferenceConsumer(
        db_path, config, prefix=prefix, store=store, client_id=client_id, delay_s=delay_s
    )
    on_stop_signals(consumer.stop)
    click.echo(
        f"Consuming {prefix}/{store}/aggregates from {broker.host}:{broker.port} into {db_path}."
    )
    consumer.run()
    counts = consumer.counts
    click.echo(
        f"{counts.stored} stored, {counts.duplicates} duplicates, {counts.rejected} rejected."
    )


@click.command("ingest")
@click.option(
    "--dsn",
    default=None,
    help="PostgreSQL connection string (default: $EDGE_CENTRAL_DSN), e.g. "
    "'host=db dbname=central user=ingest'.",
)
@receiver_options("central-ingest-1")
@click.option("--group", default="central-ingest", show_default=True,
              help="Shared subscription group: the workers of one group split the messages.")
@click.option("--session-expiry", "session_expiry_s", type=click.IntRange(0, 0xFFFFFFFE),
              default=7 * 86400, show_default=True,
              help="Seconds the broker keeps this worker's session (and its messages) while "
              "it is away.")
@click.option("--batch", "batch_max", type=click.IntRange(1, 5000), default=200,
              show_default=True, help="Messages committed per transaction at most.")
@click.option("--receive-maximum", type=click.IntRange(1, 65535), default=400, show_default=True,
              help="Unacknowledged messages the broker may have out to this worker.")
@click.option("--accept-days", type=click.FloatRange(min=0, min_open=True), default=400,
              show_default=True,
              help="Dead-letter windows that start longer ago than this (out_of_range): a box "
              "whose clock was never set sends 1970.")
@click.option("--delay", "commit_delay_s", type=float, default=0.0,
              help="Sleep before each commit (testing a slow database).")
def ingest_command(
    dsn: str | None,
    broker: ReceiverBroker,
    prefix: str,
    client_id: str,
    group: str,
    session_expiry_s: int,
    batch_max: int,
    receive_maximum: int,
    accept_days: float,
    commit_delay_s: float,
) -> None:
    """Central ingestion worker: a shared subscription to every store's aggregates, each
    committed to PostgreSQL before it is acknowledged (see docs/central.md)."""
    from sync.central.ingest import IngestSettings, IngestWorker
    from sync.central.store import CentralStore
    from sync.consumer import check_topic_segments

    dsn = _central_dsn(dsn)
    check_topic_segments(prefix, "+", names=("--prefix", "--store"))
    config = broker.config(what="ingest")
    settings = IngestSettings(
        prefix=prefix,
        group=group,
        client_id=client_id,
        session_expiry_s=session_expiry_s,
        receive_maximum=receive_maximum,
        batch_max=batch_max,
        accept_past_s=accept_days * 86_400,
        commit_delay_s=commit_delay_s,
    )
    try:
        worker = IngestWorker(CentralStore(dsn, worker=client_id), config, settings)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    stop = threading.Event()
    on_stop_signals(stop.set)
    click.echo(
        f"Ingesting {settings.topic_filter()} from {broker.host}:{broker.port} as {client_id}."
    )
    worker.run(stop)
    counts = worker.counts
    click.echo(
        f"{counts.stored} stored, {counts.duplicates} duplicates, "
        f"{counts.dead_letters} dead-lettered."
    )


@click.command("sign-config")
@click.option("--store", required=True, help="Store id the message is for.")
@click.option("--k", "k", type=int, default=None, help="New min_publishable_count (>= 2).")
@click.option("--window", "window_s", type=int, default=None, help="New window length (seconds).")
@click.option(
    "--segment-spec",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON file of a versioned segment spec.",
)
@click.option("--clear-segment-spec", is_flag=True,
              help="Drop the spec set by an earlier message: the box goes back to its own.")
@click.option(
    "--key-env",
    default="EDGE_SYNC_DOWNLINK_KEY",
    show_default=True,
    help="Environment variable holding the store's downlink key.",
)
def sign_config_command(
    store: str, k: int | None, window_s: int | None, segment_spec: Path | None,
    clear_segment_spec: bool, key_env: str,
) -> None:
    """Print a signed config/set message (for the central platform, and for tests).

    It is checked first with the box's own checks (key, store, every change): what a box
    would refuse is not signed."""
    from sync.contract import parse_json
    from sync.downlink import signed_config_set
    from sync.errors import ContractError, DownlinkRefused, short_reason

    if segment_spec is not None and clear_segment_spec:
        raise click.UsageError("give --segment-spec or --clear-segment-spec, not both")
    key = os.environ.get(key_env)
    if not key:
        raise ConfigError(f"set the downlink key in the environment variable {key_env}")
    changes: dict = {}
    if k is not None:
        changes["min_publishable_count"] = k
    if window_s is not None:
        changes["window_s"] = window_s
    if segment_spec is not None:
        try:
            changes["segment_spec"] = parse_json(segment_spec.read_bytes(), str(segment_spec))
        except ContractError as error:
            raise ConfigError(str(error)) from None
    if clear_segment_spec:
        changes["segment_spec"] = None  # the box removes its downlinked spec
    if not changes:
        raise click.UsageError(
            "nothing to set: give --k, --window, --segment-spec or --clear-segment-spec")
    try:
        payload = signed_config_set(store, changes, key)
    except DownlinkRefused as error:
        reason = short_reason(str(error))
        raise ConfigError(f"not signed, a box would refuse it: {reason}") from None
    click.echo(payload.decode())


@click.command("refit")
@click.option(
    "--dsn",
    default=None,
    help="Central PostgreSQL connection string (default: $EDGE_CENTRAL_DSN).",
)
@click.option(
    "--spec",
    "spec_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The segment spec the stores run now (YAML or JSON): their statistics are about it.",
)
@click.option("--day", "first", required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--until", "last", default=None, help="Last UTC day (default: --day).")
@click.option(
    "--min-stores",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Refuse the refit with statistics from fewer stores.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where the new spec goes (JSON, for `edge sync sign-config --segment-spec`).",
)
def refit_command(
    dsn: str | None, spec_path: Path, first: str, last: str | None, min_stores: int, out: Path
) -> None:
    """Refit the micro-segments from the stores' daily statistics (one federated EM round).

    Writes a new spec version to --out; a refusal (too few stores, a segment withheld by
    k, statistics of another version) keeps the current spec, says why and exits 1."""
    import psycopg

    from edge.visits.spec import read_spec
    from sync.central.pool import refit_from_database

    dsn = _central_dsn(dsn)
    spec = read_spec(spec_path)[0]
    days = [utc_day(first, "--day"), utc_day(last or first, "--until")]
    if days[1] < days[0]:
        raise click.BadParameter("is before --day", param_hint="--until")
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            result, pooled = refit_from_database(conn, spec, *days, min_stores=min_stores)
    except psycopg.Error as error:
        raise ConfigError(f"cannot read the central database: {str(error).strip()}") from None
    if not result.ok:
        raise click.ClickException(str(result.refused))
    document = result.spec.model_dump(mode="json", exclude_none=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    click.echo(
        f"Spec {result.spec.spec_version} refitted from {result.stores} stores "
        f"({pooled.store_days} store-days, {result.visits} visits) under "
        f"{spec.spec_version}, written to {out}."
    )
    if pooled.other_versions:
        click.echo(f"Skipped {pooled.other_versions} store-days of other spec versions.")


@click.command("gaps")
@click.option(
    "--dsn",
    default=None,
    help="Central PostgreSQL connection string (default: $EDGE_CENTRAL_DSN).",
)
@click.option("--store", default=None, help="One store id (default: every store).")
@click.option("--since", default=None, help="First UTC day, YYYY-MM-DD (default: the first).")
@click.option("--until", default=None, help="Last UTC day, YYYY-MM-DD (default: the last).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, with the ids.")
def gaps_command(
    dsn: str | None, store: str | None, since: str | None, until: str | None, as_json: bool
) -> None:
    """List the windows missing in the central database: per store, the holes between
    its first and last stored window (lost by a broker, dead-lettered, or still in an
    offline box's outbox; see docs/central.md)."""
    import psycopg

    from sync.central.gaps import missing_windows

    dsn = _central_dsn(dsn)
    first = None if since is None else utc_day(since, "--since")
    last = None if until is None else utc_day(until, "--until")
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            gaps = missing_windows(conn, store=store, since=first, until=last)
    except psycopg.Error as error:
        raise ConfigError(f"cannot read the central database: {str(error).strip()}") from None
    missing = sum(gap.windows for gap in gaps)
    if as_json:
        click.echo(json.dumps({
            "windows": missing,
            "gaps": [{**gap.as_dict(), "ids": gap.window_ids()} for gap in gaps],
        }))
        return
    for gap in gaps:
        item = gap.as_dict()
        click.echo(f"{gap.store}  {item['from']} .. {item['to']}  "
                   f"{gap.windows} window(s) of {gap.window_s} s")
    stores = len({gap.store for gap in gaps})
    click.echo(f"{missing} window(s) missing in {len(gaps)} gap(s) of {stores} store(s)."
               if gaps else "No window missing.")


def _central_dsn(dsn: str | None) -> str:
    """The central database: ``--dsn``, else ``$EDGE_CENTRAL_DSN``."""
    dsn = dsn or os.environ.get("EDGE_CENTRAL_DSN")
    if not dsn:
        raise ConfigError("no database: pass --dsn or set EDGE_CENTRAL_DSN")
    return dsn
