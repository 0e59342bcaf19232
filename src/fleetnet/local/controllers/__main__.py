"""``python -m fleetnet.local.controllers --kubeconfig FILE``: the controller manager in the foreground.

Runs until SIGTERM or SIGINT, then stops its loops and exits 0. A kubeconfig it cannot use is one
sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from fleetnet.errors import FleetnetError
from fleetnet.kube.client import KubeClient
from fleetnet.local.controllers.manager import CONTROLLERS, USER_AGENT, ControllerManager, Settings, select


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fleetnet.local.controllers", description=__doc__)
    p.add_argument("--kubeconfig", required=True, help="the kubeconfig of the cluster's API server")
    p.add_argument("--context", default=None, help="the kubeconfig context (default: its current one)")
    p.add_argument(
        "--controllers",
        default="*",
        help=f"comma-separated: * for all, a name to add, -name to leave out ({', '.join(CONTROLLERS)})",
    )
    p.add_argument("--resync-period", type=float, default=300.0, help="seconds between full resyncs")
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else (logging.INFO if args.verbose else logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        controllers = select(args.controllers)
        KubeClient.from_kubeconfig(args.kubeconfig, args.context).close()  # fail now on a bad kubeconfig
    except (ValueError, FleetnetError) as e:
        print(str(e), file=sys.stderr)
        return 2

    def client() -> KubeClient:
        return KubeClient.from_kubeconfig(args.kubeconfig, args.context, user_agent=USER_AGENT)

    manager = ControllerManager(client, Settings(controllers, resync=args.resync_period))

    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    manager.start()
    stop.wait()
    manager.stop()
    logging.getLogger(__name__).info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
