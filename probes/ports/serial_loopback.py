"""ports.serial_loopback (routine): bytes sent out of a serial port come back intact.

    probelink-agent check --routines --probe ports.serial_loopback --serial-port /dev/ttyUSB0

A loopback plug joins the port's TX to its RX (and RTS to CTS), so every byte written
must be read back unchanged. The routine asks the person to fit the plug, then sends
`ports.loopback_rounds` rounds of `ports.loopback_bytes` random bytes at
`ports.loopback_baud` and reads each round back within `ports.loopback_timeout_s`.

- every byte back and equal: PASSED;
- bytes missing or changed: FAILED, with how many were sent, matched and lost -- a
  broken UART, cable or plug;
- the port cannot be opened or vanishes mid-test (unplugged adapter, no permission,
  no such device): a runtime error, never FAILED -- nothing was learnt about the UART.

Progress is kept after each round (`run.keep`), so a cancelled run still says how far
it got.
"""

from __future__ import annotations

import os
from typing import Any

from probelink.probes.context import ProbeContext
from probelink.probes.errors import Unavailable, Unsupported
from probelink.probes.registry import PORTS
from probelink.probes.routine import Finished, RoutineRun, routine
from probelink.v1 import routine_pb2


def _pyserial() -> Any:
    try:
        import serial
    except ImportError:
        raise Unsupported("pyserial is not installed") from None
    return serial


def _open(serial: Any, device: str, baud: int, timeout_s: float) -> Any:
    try:
        return serial.Serial(device, baudrate=baud, timeout=timeout_s, write_timeout=timeout_s)
    except (serial.SerialException, OSError, ValueError) as exc:
        # pyserial repeats the path in its message; the errno's words are what matter.
        errno_ = getattr(exc, "errno", None)
        why = os.strerror(errno_) if isinstance(errno_, int) else str(exc)
        raise Unavailable(f"could not open {device}: {why}", device) from exc


NO_PORT = "no port chosen: pass --serial-port"


def _needs_port(ctx: ProbeContext) -> str | None:
    return None if ctx.serial_port else NO_PORT


@routine(
    "ports.serial_loopback",
    PORTS,
    "Serial port loopback: bytes sent come back intact",
    time_budget_s=60,
    support=_needs_port,
)
def serial_loopback(ctx: ProbeContext, run: RoutineRun) -> Finished:
    device = ctx.serial_port
    if not device:
        raise Unsupported(NO_PORT)
    serial = _pyserial()
    if not run.ask("fit_loopback_plug", f"Fit the loopback plug to {device}, then press Enter."):
        raise Unsupported(f"nobody confirmed the loopback plug was fitted to {device}")
    baud = int(ctx.limit("ports.loopback_baud", 115200))
    rounds = max(1, int(ctx.limit("ports.loopback_rounds", 8)))
    size = max(1, int(ctx.limit("ports.loopback_bytes", 64)))
    timeout_s = ctx.limit("ports.loopback_timeout_s", 1.0)

    detail = routine_pb2.SerialLoopbackDetail(device=device, baud_rate=baud)
    received = 0
    port = _open(serial, device, baud, timeout_s)
    try:
        port.reset_input_buffer()
        for i in range(rounds):
            payload = os.urandom(size)
            try:
                port.write(payload)
                port.flush()
                echo = port.read(size)
            except (serial.SerialException, OSError) as exc:
                raise Unavailable(f"{device} failed during the test: {exc}", device) from exc
            detail.bytes_sent += size
            detail.bytes_matched += sum(a == b for a, b in zip(payload, echo, strict=False))
            detail.rounds = i + 1
            received += len(echo)
            if echo != payload:
                # Late or extra bytes of a bad round must not spill into the next one.
                run.sleep(min(timeout_s, 0.05))
                port.reset_input_buffer()
            partial = routine_pb2.SerialLoopbackDetail()
            partial.CopyFrom(detail)  # a copy: later rounds must not change what was kept
            run.keep(partial)
            run.progress(int(100 * (i + 1) / rounds), f"round {i + 1} of {rounds}")
    finally:
        port.close()

    if detail.bytes_matched == detail.bytes_sent:
        return Finished(
            True,
            f"all {detail.bytes_sent} bytes came back intact over {rounds} rounds at {baud} baud",
            detail,
        )
    lost = detail.bytes_sent - received
    wrong = received - detail.bytes_matched
    parts = []
    if wrong:
        parts.append(f"{wrong} came back wrong")
    if lost:
        parts.append(f"{lost} never came back")
    return Finished(
        False,
        f"{detail.bytes_matched} of {detail.bytes_sent} bytes came back intact "
        f"({', '.join(parts)}): check the loopback plug, the cable and the port",
        detail,
    )
