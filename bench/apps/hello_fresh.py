"""Hello world whose status and header tuples are made afresh on every call, as frameworks
make them (`bench/apps/hello.py` passes the same objects each time). For
`crates/ironhorse/examples/hello_loop.rs` (`HELLO_LOOP_APP=hello_fresh:application`): what a
response head costs when `start_response` has nothing to remember.
"""

BODY = b"Hello, world!"


def application(environ, start_response):
    code = 200
    start_response(f"{code} OK", [("Content-Type", "text/" + "plain"),
                                  ("Content-Length", str(len(BODY)))])
    return [BODY]
