"""Entry point: ``python -m fleetnet.agent --cluster-dir DIR`` (started by the local driver)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from fleetnet.agent.agent import Agent


def main() -> None:
    ap = argparse.ArgumentParser(prog="fleetnet-agent")
    ap.add_argument("--cluster-dir", required=True, type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per API request is noise
    asyncio.run(Agent(args.cluster_dir).run())


if __name__ == "__main__":
    main()
