"""Local stand-ins for the networks' APIs: one ASGI app that speaks the subset of
Mastodon, Bluesky, LinkedIn, Meta Graph (Facebook, Instagram, Threads), Telegram and a
CMS webhook that the publishers use, records what it receives and injects faults.

    with running_standins() as base_url:            # tests, bench
        ...
    python -m newsroom.standins --port 8900         # by hand; admin page at /
"""

from newsroom.standins.app import NETWORKS, StandinApp, create_app
from newsroom.standins.config import StandinConfig
from newsroom.standins.recorder import FaultRule, Recorder
from newsroom.standins.server import StandinControl, run_standins, running_standins

__all__ = [
    "NETWORKS",
    "FaultRule",
    "Recorder",
    "StandinApp",
    "StandinConfig",
    "StandinControl",
    "create_app",
    "run_standins",
    "running_standins",
]
