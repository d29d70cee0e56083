"""ironhorse: a Rust web server for static files and Python WSGI apps, run inside this Python.

``ironhorse APP`` (the console script) and ``python -m ironhorse APP`` start the server in
the current process, with the current interpreter: the application runs in the virtualenv
ironhorse was installed into. Every flag is the standalone binary's (``ironhorse --help``).
"""

import sys

_SUPPORTED = ((3, 10), (3, 13))


def _fail(message):
    sys.stderr.write("ironhorse: " + message + "\n")
    raise SystemExit(2)


if not _SUPPORTED[0] <= sys.version_info[:2] <= _SUPPORTED[1]:
    _fail(
        "Python %d.%d is not supported (CPython %d.%d to %d.%d are)"
        % (sys.version_info[:2] + _SUPPORTED[0] + _SUPPORTED[1])
    )

try:
    from ironhorse import _ironhorse
except ImportError as error:  # a wheel for another interpreter, or a damaged install
    import glob
    import os

    _built = sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(os.path.dirname(__file__), "_ironhorse*.so"))
    )
    _fail(
        "this install does not fit CPython %d.%d at %s (%s); reinstall it with this "
        "interpreter: %s -m pip install --force-reinstall ironhorse"
        % (
            sys.version_info[0],
            sys.version_info[1],
            sys.executable,
            ("it was built for another Python: " + ", ".join(_built)) if _built else error,
            sys.executable,
        )
    )

__version__ = _ironhorse.__version__


def run(argv=None):
    """Runs the server with ``argv`` (default: this process's arguments); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    return _ironhorse.main(["ironhorse", *args])


def main():
    """The ``ironhorse`` console script."""
    raise SystemExit(run())
