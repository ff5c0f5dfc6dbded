"""Hypothesis strategies that damage valid report frames the ways a wire or a bug would.

    sent = [Sent(0, frame.zstd_frame, serialized), ...]   # valid frames and their content
    @given(case=mutated(sent))
    def test_it(case):
        frame, allowed = case       # a ReportFrame, and the contents it may honestly decode to

Bit flips, truncations, insertions, deletions, splices of two valid frames, rewritten
header bytes, rewritten block headers and relabeled dictionaries. A mutation may be a
no-op (a flip drawn twice, a byte rewritten to itself): `allowed` names every content
the result may still decode to; anything else must be refused.

Shared by the in-process property test (tests/server/ingest/test_mutations.py) and the
one against a real server process (tests/server/test_ingest_property.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from probelink.v1 import wire_pb2

# Dictionary ids a relabel picks from: none, the first ones, and the extremes.
RELABELS = (0, 1, 2, 255, 2**32 - 1)
KINDS = ("flip", "truncate", "insert", "delete", "splice", "header", "block", "relabel")


@dataclass(frozen=True)
class Sent:
    """A valid frame as an agent sends it, and the serialized Report inside."""

    dictionary_id: int
    frame: bytes
    content: bytes


@st.composite
def mutated(
    draw: st.DrawFn, sent: Sequence[Sent], relabels: Sequence[int] = RELABELS
) -> tuple[wire_pb2.ReportFrame, set[bytes]]:
    """A mutated frame made from one of `sent`, and the contents it may honestly decode to."""
    base = draw(st.sampled_from(sent))
    data = bytearray(base.frame)
    allowed = {base.content}
    dictionary_id = base.dictionary_id
    n = len(data)
    kind = draw(st.sampled_from(KINDS))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, n - 1))]
    elif kind == "insert":
        i = draw(st.integers(0, n))
        data[i:i] = draw(st.binary(min_size=1, max_size=16))
    elif kind == "delete":
        i = draw(st.integers(0, n - 1))
        del data[i : i + draw(st.integers(1, 16))]
    elif kind == "splice":
        other = draw(st.sampled_from(sent))
        data = (
            data[: draw(st.integers(0, n))] + other.frame[draw(st.integers(0, len(other.frame))) :]
        )
        allowed.add(other.content)
        dictionary_id = draw(st.sampled_from([base.dictionary_id, other.dictionary_id]))
    elif kind == "header":
        # Rewrite a byte of the header (descriptor, window, dictionary id, content size).
        i = draw(st.integers(4, min(13, n - 1)))
        data[i] = draw(st.integers(0, 255))
    elif kind == "block":
        # Rewrite a 3-byte block header (or whatever 3 bytes sit there) somewhere.
        i = draw(st.integers(5, n - 3))
        data[i : i + 3] = draw(st.binary(min_size=3, max_size=3))
    else:
        dictionary_id = draw(st.sampled_from(relabels))
    frame = wire_pb2.ReportFrame(dictionary_id=dictionary_id, zstd_frame=bytes(data))
    return frame, allowed
