"""Report size on the wire: raw vs gzip vs zstd vs zstd with a trained dictionary.

    .venv/bin/python bench/sizes.py [--reports 2000] [--json]

On the realistic corpus (bench/corpus.py): the dictionary is trained on the first half
and every figure is measured on the second half, whose devices it never saw. zstd is
level 3 through the agent's own encoder (`probelink.wire`: content size and checksum in
each frame, as the server requires), the dictionary trained the way the server trains
it. Times are µs per report to compress, the median of several passes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Callable
from typing import Any

from corpus import build_corpus
from selfcheck import median_of

from probelink.server.ingest.dictionaries import DEFAULT_DICTIONARY_SIZE, train
from probelink.wire import Encoder

DICT_ID = 1


def train_dictionary(samples: list[bytes], dict_id: int = DICT_ID) -> bytes:
    """A zstd dictionary from `samples`, trained by the server's own code."""
    return train(samples, dict_id)


def _codec_figures(encode: Callable[[bytes], bytes], reports: list[bytes]) -> tuple[float, float]:
    """(µs per report, mean bytes) of one pass over `reports`."""
    start = time.perf_counter()
    total = sum(len(encode(r)) for r in reports)
    return (time.perf_counter() - start) * 1e6 / len(reports), total / len(reports)


def measure(reports: int, runs: int = 5, seed: int = 0) -> dict[str, Any]:
    corpus = build_corpus(reports, seed)
    learn, test = corpus[: len(corpus) // 2], corpus[len(corpus) // 2 :]
    start = time.perf_counter()
    dictionary = train_dictionary(learn)
    train_s = time.perf_counter() - start
    plain, with_dict = Encoder(), Encoder(dictionary, DICT_ID)
    codecs: dict[str, Callable[[bytes], bytes]] = {
        "raw": bytes,
        "gzip -6": lambda r: gzip.compress(r, compresslevel=6, mtime=0),
        "zstd -3": lambda r: plain.encode(r).zstd_frame,
        "zstd -3 + dictionary": lambda r: with_dict.encode(r).zstd_frame,
    }
    rows = {}
    for name, encode in codecs.items():
        us, mean = median_of(runs, _codec_figures, encode, test)
        rows[name] = {"mean_bytes": mean, "us_per_report": us if name != "raw" else 0.0}
    zstd, dict_mean = rows["zstd -3"]["mean_bytes"], rows["zstd -3 + dictionary"]["mean_bytes"]
    return {
        "reports": len(corpus),
        "trained_on": len(learn),
        "measured_on": len(test),
        "dictionary_bytes": len(dictionary),
        "dictionary_size_asked": DEFAULT_DICTIONARY_SIZE,
        "train_seconds": train_s,
        "codecs": rows,
        "zstd_over_dictionary": zstd / dict_mean,
        "target_zstd_over_dictionary": 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="report size benchmark")
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.reports)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    from server_core import print_sizes

    print_sizes(result)


if __name__ == "__main__":
    main()
