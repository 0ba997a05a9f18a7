"""Link conditions: what a link does to the traffic one end sends (tc's rate, netem's delay, jitter and
loss), and their values as tc takes them and as `tc qdisc show` prints them back."""

import dataclasses
from dataclasses import dataclass

#: A rate in bits a second, by tc's unit.
_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}


def rate_bits(rate: str) -> float:
    """`10mbit` -> 10_000_000.0."""
    number = rate.rstrip("bitkmg")
    return float(number) * _RATE_UNITS[rate[len(number) :]]


#: A time in microseconds, by tc's unit.
_TIME_UNITS = {"us": 1, "ms": 10**3, "s": 10**6}


def time_us(time: str) -> float:
    """`1.5ms` -> 1500.0."""
    number = time.rstrip("mus")
    return float(number) * _TIME_UNITS[time[len(number) :]]


def shown_time(us: float) -> str:
    """A netem time of 1 ms or more as `tc qdisc show` prints it: three significant digits, in s or ms
    (`20ms`, `1.5s`); below 1 ms, iproute2 versions print it differently, so a lab declares none."""
    return f"{us / 10**6:.3g}s" if us >= 10**6 else f"{us / 10**3:.3g}ms"


def kept_percent(percent: str) -> int:
    """A netem percentage as the kernel keeps it: a share of 2**32 - 1 (tc rounds to the nearest)."""
    return round(float(percent.rstrip("%")) / 100 * 0xFFFFFFFF)


def shown_percent(percent: str) -> str:
    """A netem percentage as `tc qdisc show` prints it: the share the kernel keeps, printed back
    with six significant digits (`0.5%`)."""
    return f"{100.0 * kept_percent(percent) / 0xFFFFFFFF:g}%"


@dataclass(frozen=True)
class Conditions:
    """What a link does to the traffic one end sends, in tc's words: a `rate` (10mbit), a `delay`
    (20ms) with its `jitter`, a `loss` (0.5%). A rate alone is tbf's; anything else is netem's."""

    rate: str | None = None
    delay: str | None = None
    jitter: str | None = None
    loss: str | None = None

    @property
    def qdisc(self) -> str:
        return "tbf" if self.delay is None and self.loss is None else "netem"

    @property
    def text(self) -> str:
        """`rate 10mbit, delay 20ms`: what a reader and the drift lines see."""
        return ", ".join(f"{key} {value}" for key, value in dataclasses.asdict(self).items() if value is not None)
