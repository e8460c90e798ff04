"""Several ``airflow`` commands, one after the other, in one interpreter (a subprocess of the
tests): what the ``airflow`` executable runs (``airflow.__main__.main``) for each, so the
second ``airflow dags test`` of the demo DAG spares Airflow's start (its imports, the DAG
bundle, the in-process execution API: ~15 s of CPU here) while the test still looks at the
database, S3 and the emulators between the two runs.

Protocol: one JSON object a line on stdin, ``{"args": [...], "stdout": PATH, "stderr": PATH}``;
the command's file descriptors 1 and 2 (its tasks' kernels included) go to those files, and
when it ends one line ``{"returncode": N}`` is written to this process's own stdout. EOF ends
the process. Used by ``test_dags_test_e2e.py``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def main() -> None:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    from airflow.__main__ import main as airflow_main

    for line in sys.stdin:
        command = json.loads(line)
        with open(command["stdout"], "w") as out, open(command["stderr"], "w") as err:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.argv = ["airflow", *command["args"]]
            try:
                airflow_main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:  # reported as the command's failure
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        answers.write(json.dumps({"returncode": code}) + "\n")


if __name__ == "__main__":
    main()
