"""``python -m newsroom.standins [--host H] [--port P] [--quiet]``: serve the stand-ins by hand."""

import argparse

from newsroom.standins.server import run_standins


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Newsroom network stand-ins.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--quiet", action="store_true",
                        help="no access log (for a benchmark's burst)")
    args = parser.parse_args()
    run_standins(args.host, args.port, quiet=args.quiet)


if __name__ == "__main__":
    main()
