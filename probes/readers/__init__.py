"""Parsers of kernel interfaces and tool outputs, one module per source.

Each is named after the kernel path it reads (`class_power_supply`, `class_thermal`,
`bus_usb`) or the tool (`smartctl`), returns typed dataclasses whose fields name their
source and unit, and knows nothing of protobuf or verdicts: the probes judge.
What could not be read is kept per device as `problems.ReadProblem`, shared by all.
"""
