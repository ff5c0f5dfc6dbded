"""The ingest path's pure parts: check a frame, decompress it, parse and judge the report.

    book = DictionaryBook.load(store)
    decoded = decode_frame(frame, book, max_content_size)     # IngestRefused if not
    summary = summarize(decoded.report, now_us)                # IngestRefused if not

No gRPC and no database here: the gateway calls these, the store keeps the result.
`frames` reads zstd headers by hand, `dictionaries` holds every issued dictionary
and trains new ones, `decode` turns a frame into a Report, `validate` judges it.
"""

from probelink.server.ingest.decode import DecodedReport, decode_frame
from probelink.server.ingest.dictionaries import DictionaryBook, train
from probelink.server.ingest.frames import (
    DEFAULT_MAX_CONTENT_SIZE,
    FrameInfo,
    inspect_frame,
    max_frame_length,
)
from probelink.server.ingest.validate import summarize

__all__ = [
    "DEFAULT_MAX_CONTENT_SIZE",
    "DecodedReport",
    "DictionaryBook",
    "FrameInfo",
    "decode_frame",
    "inspect_frame",
    "max_frame_length",
    "summarize",
    "train",
]
