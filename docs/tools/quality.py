#!/usr/bin/env python3
"""Detection-quality report over rows saved by `cargo bench --bench nab_offline` (or `score.py run
--save-rows`): NAB standard profile over the whole corpus, its even and odd files, and each
category or domain scored alone (its own threshold); how often rows outside the windows reach the
severity bands; and, for a sweep, leave-one-domain-out selection.

    python3 docs/tools/quality.py --nab NAB_ROWS.json --mcmd MCMD_ROWS.json
    python3 docs/tools/quality.py sweep LABEL=NAB_ROWS.json,MCMD_ROWS.json ...

Scoring is `../shared/nab/score.py`'s own (imported, not copied). Standard library only.
"""
import argparse
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared"))


def load_scorer():
    path = os.environ.get("NAB_SCORER", os.path.join(SHARED, "nab", "score.py"))
    spec = importlib.util.spec_from_file_location("nab_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCORE = load_scorer()
WINDOWS = {
    "nab": os.path.join(SHARED, "nab", "labels", "combined_windows.json"),
    "mcmd": os.path.join(SHARED, "mcmd", "labels", "combined_windows.json"),
}


def load_rows(path, corpus):
    windows = SCORE.load_windows(WINDOWS[corpus])
    with open(path) as f:
        saved = json.load(f)
    return {n: (r[0], r[1]) for n, r in saved.items() if n in windows}, windows


def standard(results, windows):
    if not results:
        return float("nan")
    return SCORE.nab_scores(results, windows)["standard"][0]


def groups(results):
    out = {}
    for name in sorted(results):
        out.setdefault(name.split("/")[0], []).append(name)
    return out


def subset(results, names):
    return {n: results[n] for n in names}


def bands(results, windows):
    """Share of rows outside windows (after probation) at or above 25, 50, 75, and of windows
    whose best row reaches them."""
    outside, reach, window_best = 0, [0, 0, 0], []
    for name, (times, scores) in results.items():
        limits = [(SCORE.parse_time(a), SCORE.parse_time(b)) for a, b in windows[name]]
        n = len(times)
        probation = min(int(0.15 * n), 750)
        for i in range(probation, n):
            t = times[i]
            if any(a <= t <= b for a, b in limits):
                continue
            outside += 1
            for k, level in enumerate((0.25, 0.5, 0.75)):
                reach[k] += scores[i] >= level
        for a, b in limits:
            window_best.append(max([s for t, s in zip(times, scores) if a <= t <= b] or [0]))
    share = [r / max(outside, 1) for r in reach]
    found = [sum(w >= level for w in window_best) / max(len(window_best), 1) for level in (0.25, 0.5, 0.75)]
    return share, found


def corpus_report(results, windows, label):
    parts = groups(results)
    names = sorted(results)
    line = {"all": standard(results, windows),
            "even": standard(subset(results, names[0::2]), windows),
            "odd": standard(subset(results, names[1::2]), windows)}
    for g, members in parts.items():
        line[g] = standard(subset(results, members), windows)
    print(f"{label}: standard {line['all']:.2f} (even {line['even']:.2f}, odd {line['odd']:.2f})")
    for g in parts:
        print(f"    {g:<40} {line[g]:6.2f}  ({len(parts[g])} files)")
    share, found = bands(results, windows)
    print("    rows outside windows at >= 25/50/75: " + " / ".join(f"{100 * s:.3f}%" for s in share)
          + "; windows reaching them: " + " / ".join(f"{100 * f:.0f}%" for f in found))
    return line


def report(args):
    lines = {}
    if args.nab:
        results, windows = load_rows(args.nab, "nab")
        lines["nab"] = corpus_report(results, windows, "NAB dev")
    if args.mcmd:
        results, windows = load_rows(args.mcmd, "mcmd")
        lines["mcmd"] = corpus_report(results, windows, "MCMD dev")
    if "nab" in lines and "mcmd" in lines:
        print(f"mean of the two corpora: {(lines['nab']['all'] + lines['mcmd']['all']) / 2:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(lines, f, indent=2)


def sweep(args):
    """Each LABEL=NAB,MCMD is one setting of a constant. Prints every setting's figures, then for
    each MCMD domain the setting that scores best on NAB plus the other three domains, and what
    that setting scores on the domain left out."""
    table = {}
    for item in args.settings:
        label, paths = item.split("=", 1)
        nab_path, mcmd_path = paths.split(",")
        nab, nab_windows = load_rows(nab_path, "nab")
        mcmd, mcmd_windows = load_rows(mcmd_path, "mcmd")
        names = sorted(nab)
        row = {"nab": standard(nab, nab_windows),
               "nab_even": standard(subset(nab, names[0::2]), nab_windows),
               "nab_odd": standard(subset(nab, names[1::2]), nab_windows),
               "mcmd": standard(mcmd, mcmd_windows)}
        domains = groups(mcmd)
        for d, members in domains.items():
            row[d] = standard(subset(mcmd, members), mcmd_windows)
            rest = [n for n in mcmd if n.split("/")[0] != d]
            row["without " + d] = standard(subset(mcmd, rest), mcmd_windows)
        table[label] = row
        print(f"{label:>12}: NAB {row['nab']:6.2f} ({row['nab_even']:6.2f} / {row['nab_odd']:6.2f})  MCMD {row['mcmd']:6.2f}  "
              + "  ".join(f"{d[:8]} {row[d]:6.2f}" for d in domains))
    domains = [k for k in next(iter(table.values())) if k.startswith("without ")]
    for key in domains:
        d = key[len("without "):]
        chosen = max(table, key=lambda l: table[l]["nab"] + table[l][key])
        print(f"leave out {d}: chosen {chosen} (NAB + rest {table[chosen]['nab'] + table[chosen][key]:.2f}), "
              f"held-out {table[chosen][d]:.2f} (best possible {max(table[l][d] for l in table):.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--nab")
    parser.add_argument("--mcmd")
    parser.add_argument("--json")
    s = sub.add_parser("sweep")
    s.add_argument("settings", nargs="+")
    args = parser.parse_args()
    if args.command == "sweep":
        sweep(args)
    else:
        report(args)


if __name__ == "__main__":
    sys.exit(main())
