#!/usr/bin/env python3
"""Benchmark the Wi-Fi probe-request parser against scapy, in one run, on one capture.

Measures frames per second of

- ``scapy``: ``PcapReader`` (full dissection: RadioTap / Dot11 / Dot11ProbeReq /
  Dot11Elt...) plus reading the same fields the product needs;
- ``parser``: edge's capture reader + :func:`edge.wifi.parser.dissect` (radiotap,
  802.11 header, information elements, from raw bytes), as it runs in the product;
- ``parser_uncached``: the same with the element-block cache emptied before every
  frame (the worst case: no probe ever repeats);
- ``pipeline``: the whole replay path (parse, anonymize, estimate devices, windows).

and prints each as a ratio to scapy's rate. ``--json`` prints one JSON object.
Each figure is the best of ``--repeat`` runs (the machine is shared; best-of is the
least noisy estimate of what the code costs).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from checkout_venv import SHARED, bench_parser, enter

enter(__file__)

from edge.config.wifi import WifiConfig
from edge.wifi import parser
from edge.wifi.pcapfile import CaptureFile
from edge.wifi.pipeline import replay_to_list

DEFAULT_PCAP = SHARED / "wifi" / "brno-sc6-61" / "position_1_sc6-61_2023-02-08_anonymized.pcap"


def best_rate(frames: int, run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return frames / best


def scapy_run(path: Path, limit: int) -> int:
    from scapy.layers.dot11 import Dot11, Dot11Elt, RadioTap
    from scapy.utils import PcapReader

    count = 0
    with PcapReader(str(path)) as reader:
        for packet in reader:
            if count >= limit:
                break
            count += 1
            if Dot11 in packet:
                radiotap = packet[RadioTap]
                _ = (radiotap.dBm_AntSignal, getattr(radiotap, "ChannelFrequency", None),
                     packet[Dot11].addr2, packet[Dot11].SC)
                element = packet.getlayer(Dot11Elt)
                while isinstance(element, Dot11Elt):
                    _ = (element.ID, element.info)
                    element = element.payload
    return count


def parser_run(path: Path, cached: bool) -> int:
    dissect, clear = parser.dissect, parser.clear_caches
    count = 0
    with CaptureFile(path) as capture:
        for frame in capture:
            if not cached:
                clear()
            with contextlib.suppress(parser.MalformedFrame):
                dissect(frame.data)
            count += 1
    return count


def main() -> None:
    arguments = bench_parser(__doc__, quick="2 passes, 1,000 scapy frames")
    arguments.add_argument("pcap", nargs="?", type=Path, default=DEFAULT_PCAP)
    arguments.add_argument("--repeat", type=int, default=5)
    arguments.add_argument("--scapy-frames", type=int, default=3000,
                           help="frames scapy dissects per run (it is slow)")
    options = arguments.parse_args()
    if options.quick:
        options.repeat = min(options.repeat, 2)
        options.scapy_frames = min(options.scapy_frames, 1000)
    if not options.pcap.is_file():
        sys.exit(f"no capture at {options.pcap}: set EDGE_ASSETS_DIR or pass a pcap")

    total = parser_run(options.pcap, cached=True)
    scapy_frames = min(total, options.scapy_frames)
    scapy_repeat = max(1, min(3, options.repeat))
    results = {
        "frames": total,
        "scapy_fps": best_rate(scapy_frames, lambda: scapy_run(options.pcap, scapy_frames),
                               scapy_repeat),
        "parser_fps": best_rate(total, lambda: parser_run(options.pcap, True), options.repeat),
        "parser_uncached_fps": best_rate(total, lambda: parser_run(options.pcap, False),
                                         options.repeat),
        "pipeline_fps": best_rate(total, lambda: replay_to_list(options.pcap, WifiConfig()),
                                  options.repeat),
    }
    scapy_fps = results["scapy_fps"]
    for name in ("parser", "parser_uncached", "pipeline"):
        results[f"{name}_speedup"] = results[f"{name}_fps"] / scapy_fps
    if options.json:
        print(json.dumps({k: round(v, 2) for k, v in results.items()}))
        return
    print(f"capture: {options.pcap.name} ({total} frames; scapy timed on {scapy_frames})")
    print(f"{'':24}{'frames/s':>12}{'x scapy':>10}")
    print(f"{'scapy full dissection':24}{scapy_fps:12,.0f}{1.0:10.1f}")
    for name, label in (("parser", "edge parser"), ("parser_uncached", "edge parser, no cache"),
                        ("pipeline", "edge full pipeline")):
        print(f"{label:24}{results[name + '_fps']:12,.0f}{results[name + '_speedup']:10.1f}")


if __name__ == "__main__":
    main()
