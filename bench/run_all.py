"""`make bench`: every stage's benchmark in turn, each printing its own side-by-side table.

    python bench/run_all.py            # the default sizes of each benchmark
    python bench/run_all.py --quick    # the small sizes only (a few minutes)
"""

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "collect": (["--rows", "1000000", "10000000"], ["--rows", "1000000"]),
    "clean": ([], ["--quick"]),
    "integrate": ([], ["--events", "1000000"]),
    "quality": ([], ["--rows", "1000000"]),
    "label": ([], ["--quick"]),
    "reco": ([], ["--events", "200000"]),
    "search": ([], ["--sizes", "10000", "100000"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("only", nargs="*", help=f"benchmarks to run, of {list(BENCHES)} (default: all)")
    args = parser.parse_args()
    failed = []
    for name, (full, quick) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        print(f"\n=== bench/{name}.py", flush=True)
        if subprocess.run([sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]).returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
