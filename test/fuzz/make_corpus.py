#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_safetensors to test/fuzz/corpus/.

Small safetensors files, valid ones of several shapes and broken ones of
several defect classes. Deterministic (plain Python 3, no dependencies): run
it again and the files come out byte for byte the same.

    python3 test/fuzz/make_corpus.py [output-dir]

Every file is  u64 little-endian N | N bytes of JSON header | data.  Headers
are written by hand, not by json.dumps, so that escapes, whitespace and
defects are exactly as spelled here. Each broken file's name says its
defect (one ema_status class); the fuzzer only needs them as starting points.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def tensor(name, dtype, shape, begin, end):
    dims = ",".join(str(d) for d in shape)
    return '"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}' % (
        name, dtype, dims, begin, end)


def header(*entries):
    return "{" + ",".join(entries) + "}"


def pad8(text):
    """Pads with spaces so that 8 + N is a multiple of 8, as the reference writer does."""
    return text + " " * (-len(text.encode("utf-8")) % 8)


def data(n):
    """A recognisable, deterministic data section."""
    return bytes((i * 37 + 11) & 0xFF for i in range(n))


def file_bytes(head, data_size=0, length=None):
    raw = head.encode("utf-8") if isinstance(head, str) else head
    n = len(raw) if length is None else length
    return struct.pack("<Q", n) + raw + data(data_size)


DTYPES = [("BOOL", 1), ("U8", 1), ("I8", 1), ("F8_E5M2", 1), ("F8_E4M3", 1),
          ("I16", 2), ("U16", 2), ("F16", 2), ("BF16", 2), ("I32", 4),
          ("U32", 4), ("F32", 4), ("F64", 8), ("I64", 8), ("U64", 8)]


def all_dtypes():
    entries, offset = [], 0
    for name, size in DTYPES:
        entries.append(tensor("t." + name.lower(), name, [2], offset, offset + 2 * size))
        offset += 2 * size
    return file_bytes(pad8(header(*entries)), offset)


def corpus():
    files = {}
    # --- valid ---------------------------------------------------------------
    files["valid-empty"] = file_bytes("{}")
    files["valid-one-f32"] = file_bytes(
        pad8(header(tensor("weight", "F32", [2, 3], 0, 24))), 24)
    files["valid-unsorted-metadata"] = file_bytes(pad8(header(
        '"__metadata__":{"format":"pt","step":"1200"}',
        tensor("model.bias", "F16", [4], 16, 24),
        tensor("model.weight", "F32", [2, 2], 0, 16),
        tensor("model.ema.num_updates", "I64", [], 24, 32),
    )), 32)
    files["valid-scalar-zero-size"] = file_bytes(header(
        tensor("empty", "F32", [0], 0, 0),
        tensor("scalar", "F64", [], 0, 8),
        tensor("empty.2d", "BF16", [3, 0], 8, 8),
        tensor("flag", "BOOL", [1, 1, 1], 8, 9),
    ), 9)
    files["valid-escapes-unicode"] = file_bytes(header(
        '"__metadata__":{"note":"a\\nb \\"q\\" caf\\u00e9 \\ud83d\\ude00","k\\u00e9y":""}',
        tensor("caf\\u00e9", "U8", [1], 0, 1),
        tensor("w\u00e9ight.\u65e5\u672c", "U8", [1], 1, 2),
        tensor("tab\\there", "U8", [1], 2, 3),
    ), 3)
    files["valid-whitespace-padded"] = file_bytes(
        '{ "a" : { "dtype" : "I32" , "shape" : [ 2 ] , "data_offsets" : [ 0 , 8 ] } ,\n'
        '\t"__metadata__" : { } }\r\n        ', 8)
    files["valid-all-dtypes"] = all_dtypes()
    # Field names and dtype spelled with escapes are the same strings (they
    # were refused as unknown before a parser fix).
    files["valid-escaped-field-dtype"] = file_bytes(
        '{"w":{"\\u0064type":"\\u0042\\u0046\\u0031\\u0036","shape":[2],'
        '"data_\\u006f\\u0066\\u0066\\u0073\\u0065\\u0074\\u0073":[0,4]}}', 4)
    # --- broken ---------------------------------------------------------------
    # The reference implementation wants '{' as the header's first byte.
    files["broken-leading-whitespace"] = file_bytes(' {}', 0)
    files["broken-truncated"] = b"\x10\x00\x00\x00\x00"
    files["broken-header-length"] = file_bytes("{}", 0, length=4096)
    files["broken-json-trailing-comma"] = file_bytes(
        header(tensor("a", "F32", [1], 0, 4)) [:-1] + ",}", 4)
    files["broken-utf8-name"] = file_bytes(
        b'{"a\xed\xa0\x80":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1)
    files["broken-lone-surrogate"] = file_bytes(header(tensor("x\\ud83d", "U8", [1], 0, 1)), 1)
    files["broken-duplicate-escaped"] = file_bytes(header(
        tensor("a", "U8", [1], 0, 1), tensor("\\u0061", "U8", [1], 1, 2)), 2)
    # The header ends inside the dtype string, on a backslash (bad JSON).
    files["broken-dtype-cut-off"] = file_bytes('{"a":{"dtype":"F3\\')
    files["broken-unknown-dtype"] = file_bytes(header(tensor("a", "F33", [1], 0, 4)), 4)
    files["broken-negative-offset"] = file_bytes(
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}', 1)
    files["broken-shape-overflow"] = file_bytes(
        header(tensor("a", "U8", [4294967296, 4294967296, 16], 0, 0)))
    files["broken-overlap"] = file_bytes(header(
        tensor("a", "F32", [2], 0, 8), tensor("b", "F32", [2], 4, 12)), 12)
    files["broken-gap"] = file_bytes(header(
        tensor("a", "F32", [1], 0, 4), tensor("b", "F32", [1], 8, 12)), 12)
    files["broken-size-mismatch"] = file_bytes(header(tensor("a", "F32", [3], 0, 8)), 8)
    files["broken-metadata-number"] = file_bytes('{"__metadata__":{"k":5}}')
    return files


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    files = corpus()
    for name in sorted(files):
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(files[name])
    total = sum(len(b) for b in files.values())
    print("make_corpus: %d files, %d bytes in %s" % (len(files), total, out))


if __name__ == "__main__":
    main()
