"""Mininet's side of the benchmark: N hosts on one Linux bridge, no controller.

Run by Debian's python3 (where the `mininet` package lives), as root: `python3 mininet_bridge.py N`.
It builds the network, stops it, and prints the two durations as JSON. It touches nothing it did
not create: no `mn -c`.
"""

import json
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import Topo


class BridgeTopo(Topo):
    """N hosts, each with one link to the switch s1 (a Linux bridge)."""

    def build(self, count: int = 3) -> None:
        switch = self.addSwitch("s1")
        for index in range(1, count + 1):
            self.addLink(self.addHost(f"h{index}"), switch)


def main() -> None:
    count = int(sys.argv[1])
    setLogLevel("error")
    net = Mininet(topo=BridgeTopo(count=count), switch=LinuxBridge, controller=None, build=False, autoSetMacs=False)
    start = time.perf_counter()
    net.build()
    net.start()
    up = time.perf_counter() - start
    start = time.perf_counter()
    net.stop()
    down = time.perf_counter() - start
    print(json.dumps({"up": up, "down": down}))


if __name__ == "__main__":
    main()
