#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_corpus.py - write the seed corpus of tests/fuzz/fuzz_ops.

Each seed is a small program in fuzz_ops.c's input format (see the comment
at the top of fuzz_ops.c): an opcode byte and its arguments.  The seeds
cover every operation and every size tier once, so that fuzzing starts
from inputs that already reach the allocator's paths.  Run it from the top
of the source tree after changing the input format:

    python3 tests/fuzz/make_corpus.py tests/fuzz/corpus
"""
import os
import random
import sys

(MALLOC, CALLOC, REALLOC, ALIGNED, MEMALIGN, FREE, USABLE, TRIM, VALIDATE,
 REMOTE_FREE, REMOTE_REALLOC, REMOTE_MALLOC, HELPER_EXIT) = range(13)

EDGES = 42  # entries of fz_edges[] in fuzz_ops.c


def small(n):        # 0..512
    return bytes([0, n & 0xff, n >> 8])


def medium(n):       # 0..32 KiB
    return bytes([3, n & 0xff, n >> 8])


def large(n):        # 0..2 MiB
    return bytes([5, n & 0xff, (n >> 8) & 0xff, n >> 16])


def edge(i):         # fz_edges[i]
    return bytes([6, i % EDGES])


def huge(n):         # 2 MiB + 1 + n % 6 MiB
    return bytes([7, n & 0xff, (n >> 8) & 0xff, n >> 16])


def op(code, *args):
    out = bytes([code])
    for a in args:
        out += bytes([a]) if isinstance(a, int) else a
    return out


def sizes(rng):
    k = rng.randrange(10)
    if k < 4:
        return small(rng.randrange(513))
    if k < 7:
        return medium(rng.randrange(32769))
    if k < 9:
        return large(rng.randrange(2 << 20))
    return edge(rng.randrange(EDGES))


def seeds():
    s = {}
    s["malloc_free_small"] = op(MALLOC, 1, small(24)) + op(MALLOC, 2, small(512)) + \
        op(FREE, 1) + op(FREE, 2)
    s["malloc_tiers"] = b"".join(op(MALLOC, i, f) for i, f in enumerate(
        [small(0), small(1), small(513 - 1), medium(513), medium(32768), large(32769),
         large((2 << 20) - 1), large(2 << 20)])) + op(VALIDATE)
    s["huge"] = op(MALLOC, 7, huge(1)) + op(USABLE, 7) + op(REALLOC, 7, huge(3 << 20)) + \
        op(REALLOC, 7, small(100)) + op(FREE, 7)
    s["calloc"] = op(CALLOC, 3, 4, medium(4000)) + op(CALLOC, 4, 0, large(300000)) + \
        op(CALLOC, 5, 0xff, small(8)) + op(REALLOC, 3, medium(9000)) + op(FREE, 4)
    s["realloc_chain"] = op(MALLOC, 9, small(16)) + b"".join(
        op(REALLOC, 9, edge(i)) for i in range(1, EDGES)) + b"".join(
        op(REALLOC, 9, edge(i)) for i in range(EDGES - 1, 0, -1))
    s["realloc_null_zero"] = op(REALLOC, 10, small(50)) + op(REALLOC, 10, small(0)) + \
        op(REALLOC, 10, small(0))
    s["aligned_all"] = b"".join(op(ALIGNED, i, sh, small(1)) for i, sh in enumerate(range(23)))
    s["aligned_big"] = b"".join(op(ALIGNED, 30 + i, sh, large(1 << sh))
                                for i, sh in enumerate(range(12, 23)))
    s["memalign_all"] = b"".join(op(MEMALIGN, 60 + i, sh, medium(3 << sh & 0x7fff))
                                 for i, sh in enumerate(range(23)))
    s["aligned_invalid"] = b"".join(op(ALIGNED, 1, 0x80 | i, small(64)) for i in range(11)) + \
        b"".join(op(MEMALIGN, 1, 0x80 | i, small(64)) for i in range(11))
    s["usable_slack"] = op(MALLOC, 1, small(17)) + op(MALLOC, 2, small(17)) + op(USABLE, 1) + \
        op(USABLE, 2) + op(MALLOC, 3, large(70000)) + op(USABLE, 3) + op(VALIDATE)
    s["trim"] = op(MALLOC, 1, large(1 << 20)) + op(FREE, 1) + op(TRIM, 0) + op(TRIM, 5) + \
        op(VALIDATE)
    s["remote_free"] = b"".join(op(MALLOC, i, small(i * 4)) for i in range(64)) + \
        b"".join(op(REMOTE_FREE, i) for i in range(0, 64, 2)) + op(VALIDATE)
    s["remote_malloc"] = b"".join(op(REMOTE_MALLOC, i, medium(i * 300)) for i in range(32)) + \
        b"".join(op(FREE, i) for i in range(32)) + op(VALIDATE)
    s["remote_realloc"] = op(MALLOC, 1, small(100)) + op(REMOTE_REALLOC, 1, large(100000)) + \
        op(REALLOC, 1, medium(20000)) + op(REMOTE_REALLOC, 1, huge(5)) + op(FREE, 1)
    s["helper_exit"] = b"".join(op(REMOTE_MALLOC, i, sizes(random.Random(i))) for i in range(16)) + \
        op(HELPER_EXIT) + b"".join(op(FREE, i) for i in range(16)) + op(VALIDATE) + op(TRIM, 0)
    s["helper_exit_remote"] = op(REMOTE_MALLOC, 1, small(64)) + op(HELPER_EXIT) + \
        op(REMOTE_FREE, 1) + op(REMOTE_MALLOC, 2, large(200000)) + op(HELPER_EXIT) + \
        op(REMOTE_REALLOC, 2, large(400000)) + op(VALIDATE)
    s["validate"] = op(VALIDATE)
    # Random mixes over every operation.
    for k in range(24):
        rng = random.Random(1000 + k)
        out = b""
        for _ in range(rng.randrange(8, 60)):
            code = rng.randrange(13)
            slot = rng.randrange(16 if k % 2 else 256)
            if code in (MALLOC, REALLOC, REMOTE_REALLOC, REMOTE_MALLOC):
                out += op(code, slot, sizes(rng))
            elif code == CALLOC:
                out += op(code, slot, rng.randrange(255), sizes(rng))
            elif code in (ALIGNED, MEMALIGN):
                out += op(code, slot, rng.randrange(23), sizes(rng))
            elif code in (FREE, USABLE, REMOTE_FREE, TRIM):
                out += op(code, slot)
            else:
                out += op(code)
        s["mix%02d" % k] = out
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds()), out))


if __name__ == "__main__":
    main()
