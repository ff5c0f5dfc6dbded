"""Hypothesis strategies that damage valid report frames the ways a wire or a bug would.

    sent = [Sent.of(frame, serialized), ...]   # valid signed frames and their content
    @given(case=mutated(sent))
    def test_it(case):
        frame, allowed = case       # a ReportFrame, and the contents it may honestly decode to

Bit flips, truncations, insertions, deletions, splices of two valid frames, rewritten
header bytes, rewritten block headers, relabeled dictionaries, and damaged or swapped
signatures. A mutation may be a no-op (a flip drawn twice, a byte rewritten to itself):
`allowed` names every content the result may still be accepted as; anything else must
be refused.

How the signature plays in: it signs the content, not the frame, so a damaged frame that
still decodes to exactly the original content keeps a valid signature and is accepted.
A frame that decodes to *another* sent report while carrying the first one's signature
(a splice) must be refused: `allowed` holds only the content the carried signature
signs. Ed25519 is deterministic, so the same content sent with and without a
dictionary carries the same signature, and a swap between those two is still honest.

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
KINDS = (
    "flip",
    "truncate",
    "insert",
    "delete",
    "splice",
    "header",
    "block",
    "relabel",
    "signature",
)


@dataclass(frozen=True)
class Sent:
    """A valid frame as an agent sends it, and the serialized Report inside."""

    dictionary_id: int
    frame: bytes
    content: bytes
    # The device's signature of `content` (ReportFrame.signature).
    signature: bytes

    @classmethod
    def of(cls, frame: wire_pb2.ReportFrame, content: bytes) -> Sent:
        return cls(frame.dictionary_id, frame.zstd_frame, content, frame.signature)


@st.composite
def mutated(
    draw: st.DrawFn, sent: Sequence[Sent], relabels: Sequence[int] = RELABELS
) -> tuple[wire_pb2.ReportFrame, set[bytes]]:
    """A mutated frame made from one of `sent`, and the contents it may honestly decode to."""
    base = draw(st.sampled_from(sent))
    data = bytearray(base.frame)
    allowed = {base.content}
    dictionary_id = base.dictionary_id
    signature = base.signature
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
        dictionary_id = draw(st.sampled_from([base.dictionary_id, other.dictionary_id]))
        # Whichever signature travels, only the content it signs may be accepted.
        owner = draw(st.sampled_from([base, other]))
        signature, allowed = owner.signature, {owner.content}
    elif kind == "header":
        # Rewrite a byte of the header (descriptor, window, dictionary id, content size).
        i = draw(st.integers(4, min(13, n - 1)))
        data[i] = draw(st.integers(0, 255))
    elif kind == "block":
        # Rewrite a 3-byte block header (or whatever 3 bytes sit there) somewhere.
        i = draw(st.integers(5, n - 3))
        data[i : i + 3] = draw(st.binary(min_size=3, max_size=3))
    elif kind == "relabel":
        dictionary_id = draw(st.sampled_from(relabels))
    else:
        signature, allowed = _signature(draw, base, sent)
    frame = wire_pb2.ReportFrame(
        dictionary_id=dictionary_id, zstd_frame=bytes(data), signature=signature
    )
    return frame, allowed


def _signature(draw: st.DrawFn, base: Sent, sent: Sequence[Sent]) -> tuple[bytes, set[bytes]]:
    """A damaged or swapped signature for `base`'s intact frame; what it may pass as."""
    how = draw(st.sampled_from(("flip", "truncate", "extend", "drop", "swap")))
    signature = bytearray(base.signature)
    if how == "flip":
        signature[draw(st.integers(0, len(signature) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        signature = signature[: draw(st.integers(1, len(signature) - 1))]
    elif how == "extend":
        signature += draw(st.binary(min_size=1, max_size=8))
    elif how == "drop":
        signature = bytearray()
    else:
        other = draw(st.sampled_from(sent))
        # Another report's signature: honest only if it is the same content.
        return other.signature, {base.content} & {other.content}
    return bytes(signature), set()
