"""The smallest WSGI app: `ironhorse examples.hello.app:application` or, from this folder,
`ironhorse app:application`."""


def application(environ, start_response):
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
