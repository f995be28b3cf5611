"""``python -m app <command>``: serve (default), db, eval-pose, eval-verdicts, scan."""

from __future__ import annotations

import sys

USAGE = """usage: python -m app [serve | db upgrade | db check | eval-pose ... | eval-verdicts ...
                     | scan ...]

  serve        start the HTTP service (settings: config/config.yaml + FACEQ_* variables)
  db upgrade   create or upgrade the store's schema (FACEQ_DATABASE_URL, else SQLite)
  db check     exit 0 when the schema is current, 1 when it is behind
  eval-pose    measure a pose estimator on labelled images (--labels CSV --images DIR)
  eval-verdicts  measure the accept/reject verdicts on a labelled set (--labels CSV --images DIR)
  scan         run the pipeline over a folder and keep the accepted aligned faces
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "serve"
    if command == "serve":
        from app.server import serve

        return serve()
    if command == "db":
        from app.db_cli import main as db_main

        return db_main(args)
    if command == "eval-pose":
        from app.eval_pose import main as eval_pose_main

        return eval_pose_main(args)
    if command == "eval-verdicts":
        from app.eval_verdicts import main as eval_verdicts_main

        return eval_verdicts_main(args)
    if command == "scan":
        from app.scan import main as scan_main

        return scan_main(args)
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2
