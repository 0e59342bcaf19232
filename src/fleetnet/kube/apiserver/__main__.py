"""Entry point: ``python -m fleetnet.kube.apiserver --config FILE`` (started by the local driver)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from fleetnet.kube.apiserver.bootstrap import bootstrap
from fleetnet.kube.apiserver.server import ApiServer, ServerConfig, listen_socket


def main() -> None:
    ap = argparse.ArgumentParser(prog="fleetnet-kube-apiserver")
    ap.add_argument("--config", required=True, type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ServerConfig.read(args.config)
    # sockets first: a port already taken fails the start before anything is written
    sockets = [listen_socket(x) for x in cfg.listen]
    server = ApiServer(cfg)
    bootstrap(server.handlers, cfg.service_cidr, cfg.advertise_address, cfg.secure_port)
    asyncio.run(server.serve(sockets))


if __name__ == "__main__":
    main()
