"""system.cpu: the processor: model, cores, frequency and how busy it is.

    >>> [r] = cpu(ProbeContext.for_machine(MACHINES / "laptop-worn-battery" / "sys"))
    >>> r.cpu.model_name, r.cpu.logical_cores, r.cpu.load_1m_pct
    ('11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz', 8, 10.5)

Informational: a processor either runs or the machine does not boot, so the only
verdict is about load. `load_1m_pct` is the 1-minute load average per logical core;
100 % means every core was busy. Short bursts above that are normal (a build, an
update); only a load far past the cores (default 200 %, `system.max_load_pct`) is worth
a WARN, because it makes the machine feel slow and can make other probes' timings
(routines) meaningless.
"""

from __future__ import annotations

from collections.abc import Iterable

from probelink.probes.context import ProbeContext
from probelink.probes.readers.proc_cpuinfo import read_cpuinfo
from probelink.probes.readers.proc_sys_kernel import read_kernel
from probelink.probes.registry import SYSTEM, telemetry
from probelink.probes.results import PASS, WARN, check, fact, result, worst
from probelink.probes.system._sources import optional, proc_root, psutil_of
from probelink.v1 import probe_pb2, system_pb2

DEFAULT_MAX_LOAD_PCT = 200.0


def _positive(value: object) -> float | None:
    # psutil reports an unknown frequency as 0.0 (VMs, some ARM SoCs): that is absent.
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return None


@telemetry("system.cpu", SYSTEM, "Processor: model, cores, frequency, load")
def cpu(ctx: ProbeContext) -> Iterable[probe_pb2.ProbeResult]:
    source = psutil_of(ctx)
    proc = proc_root(ctx)
    name = read_cpuinfo(proc)
    kernel = read_kernel(proc)
    facts = [fact("cpuinfo", e) for e in name.errors]

    logical = optional(source.cpu_count) or 0
    physical = optional(lambda: source.cpu_count(logical=False))
    freq = optional(source.cpu_freq)
    load = optional(source.getloadavg)

    info = system_pb2.CpuInfo(
        model_name=name.model_name or "",
        logical_cores=logical,
        architecture=kernel.arch or "",
    )
    if physical:
        info.physical_cores = physical
    if freq is not None:
        current, top = _positive(freq.current), _positive(freq.max)
        if current is not None:
            info.freq_current_mhz = current
        if top is not None:
            info.freq_max_mhz = top
    if name.model_name_source and name.model_name_source != "model name":
        facts.append(fact("model_name_source", name.model_name_source))

    checks: list[probe_pb2.Check] = []
    if load is not None and logical:
        load_pct = round(load[0] / logical * 100.0, 1)
        info.load_1m_pct = load_pct
        limit = ctx.limit("system.max_load_pct", DEFAULT_MAX_LOAD_PCT)
        if load_pct > limit:
            checks.append(
                check(
                    "system.load_high",
                    WARN,
                    f"1-minute load is {load_pct:g} % of {logical} cores, above {limit:g} %: "
                    "the machine is overloaded, close busy programs before judging speed",
                )
            )
    else:
        facts.append(fact("load", "the load average is not available here"))

    cores = f"{logical} logical cores" if logical else "core count unknown"
    if physical:
        cores = (
            f"{physical} cores / {logical} threads" if physical != logical else f"{logical} cores"
        )
    parts = [info.model_name or "unknown processor", cores]
    if info.HasField("freq_max_mhz"):
        parts.append(f"up to {info.freq_max_mhz:g} MHz")
    if info.HasField("load_1m_pct"):
        parts.append(f"load {info.load_1m_pct:g} %")
    yield result(worst(checks, PASS), ", ".join(parts), checks=checks, facts=facts, cpu=info)
