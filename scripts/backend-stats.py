#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""backend-stats.py LOG [KEY...]: read the statistics document a vdk back-end logs as one
JSON line (SIGUSR1, and its last line when it stops: tools/stats.h); the last one in LOG
counts. With KEYs (paths of members and indices such as "device.bytes" or
"queue_pairs.1.rx_packets"): print the value at each, one line per KEY, empty where there is
none. Without: print the device's counters as "name value, ..." on one line."""
import json
import sys


def last_document(path):
    doc = None
    with open(path, errors="replace") as f:
        for line in f:
            if '"program":' in line:
                try:
                    doc = json.loads(line[line.index("{"):])
                except ValueError:
                    pass
    return doc


def value(doc, key):
    v = doc
    for k in key.split("."):
        try:
            v = v[int(k)] if isinstance(v, list) else v[k]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
    return v


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    doc = last_document(argv[1])
    if len(argv) > 2:
        for key in argv[2:]:
            v = value(doc, key)
            print("" if v is None else v)
        return 0
    dev = (doc or {}).get("device", {})
    print(", ".join("%s %s" % (k, v) for k, v in dev.items()) or "no statistics logged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
