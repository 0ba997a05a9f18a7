"""Where a learner stands (`nsgen check`): the kernel compared with the lab's setup, step by step.

The differences `status` finds (`nsgen.run.drift`) sorted by the step whose fact they concern
(`nsgen.plan.progress`): the steps whose every fact is there are done; the first that lacks one is
where the learner is; what the kernel has beyond the lab is named apart.
"""

from dataclasses import dataclass

from nsgen.plan.progress import Stage
from nsgen.run import drift
from nsgen.topology.facts import Difference, Fact
from nsgen.topology.model import Lab


@dataclass(frozen=True)
class Standing:
    """The steps done, the first not done and what it lacks, the steps after it, and what is extra."""

    done: tuple[Stage, ...]
    current: Stage | None
    lacking: tuple[Difference, ...]
    later: tuple[Stage, ...]
    extra: tuple[Difference, ...]

    @property
    def complete(self) -> bool:
        return self.current is None and not self.extra


def standing(lab: Lab, stages: list[Stage]) -> Standing:
    """Where the kernel stands on `lab`'s setup, read once."""
    found = drift.differences(lab)
    wrong = {(d.netns, d.line): d for d in found if d.kind != "extra"}
    gone = {d.netns for d in found if d.fact.kind == "namespace" and d.kind == "missing"}
    gone_devices = {(d.netns, d.fact.device) for d in found if d.fact.kind == "device" and d.kind == "missing"}

    def lacks(fact: Fact) -> Difference | None:
        """What the kernel lacks of `fact`: in a namespace or of a device that is missing, only that is
        said (as verify.sh says it); the namespace and the device are facts of earlier steps, or of this one."""
        if fact.kind != "namespace" and fact.netns in gone:
            return None
        if fact.kind != "device" and (fact.netns, fact.device) in gone_devices:
            return None
        return wrong.get((fact.netns, fact.line))

    for index, stage in enumerate(stages):
        lacking = tuple(d for d in map(lacks, stage.facts) if d is not None)
        if lacking:
            extra = tuple(d for d in found if d.kind == "extra")
            return Standing(tuple(stages[:index]), stage, lacking, tuple(stages[index + 1 :]), extra)
    return Standing(tuple(stages), None, (), (), tuple(d for d in found if d.kind == "extra"))
