"""puppetcam: animate a portrait live from a webcam and/or a voice, and stream it.

    python main.py run      [--source IMG] [--driver webcam[:N]|VIDEO|none] [--audio mic[:DEV]|FILE|none] [--output SPEC ...]
    python main.py render   --source IMG [--driver VIDEO] [--audio FILE | --text WORDS [--voice de]] --output OUT.mp4
    python main.py prepare  --source IMG
    python main.py devices
    python main.py serve    [--host H] [--port P] [--max-sessions N] [--engine local]

Exit status: 0 on success, 2 on a user error (a one-line message on stderr), 1 on an internal error.
The parser and the commands live in src/app/.
"""

import faulthandler
import os
import sys

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV's probing warnings are not for users
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS workers to spin even before src/core/runtime/threads.py runs

from src.app.cli import main

EXIT_WATCHDOG_S = 20.0

if __name__ == "__main__":
    status = main()
    # Every stage was joined with a timeout inside main(); only the interpreter's exit is left. Should a thread
    # keep it from ending, print every thread's stack and end anyway (status 1): Ctrl+C always ends the process.
    faulthandler.dump_traceback_later(EXIT_WATCHDOG_S, exit=True)
    sys.exit(status)
