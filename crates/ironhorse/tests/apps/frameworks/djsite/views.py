import hashlib

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.template import engines
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST


def as_json(data):
    return JsonResponse(data, json_dumps_params={"sort_keys": True})


def multi(querydict):
    return {k: querydict.getlist(k) for k in sorted(querydict.keys())}


@require_GET
def index(request):
    return HttpResponse("django index\n", content_type="text/plain")


@require_GET
def user(request, user_id):
    return as_json({"framework": "django", "user_id": user_id})


@require_GET
def hello(request, name):
    return HttpResponse(f"hello {name}", content_type="text/plain; charset=utf-8")


@csrf_exempt  # so that a POST gets the 405 of require_GET, not CSRF's 403
@require_GET
def query_echo(request):
    return as_json({"args": multi(request.GET)})


@csrf_exempt
@require_POST
def form_echo(request):
    return as_json({"form": multi(request.POST)})


@csrf_exempt
@require_POST
def upload(request):
    f = request.FILES["file"]
    digest = hashlib.sha256()
    size = 0
    for chunk in f.chunks():
        digest.update(chunk)
        size += len(chunk)
    return as_json({"filename": f.name, "note": request.POST.get("note"),
                    "sha256": digest.hexdigest(), "size": size})


@require_GET
def cookie_set(request):
    resp = HttpResponse("cookie set\n", content_type="text/plain")
    resp.set_cookie("flavor", request.GET.get("flavor", "plain"))
    return resp


@require_GET
def cookie_get(request):
    return as_json({"cookies": dict(request.COOKIES)})


def go(request):
    return HttpResponseRedirect("/target")


def target(request):
    return HttpResponse("target\n", content_type="text/plain")


def stream(request):
    return StreamingHttpResponse((f"chunk {i}\n" for i in range(5)), content_type="text/plain")


FORM = engines["django"].from_string(
    "<form method='post' action='/csrf-form'>{% csrf_token %}"
    "<input name='message'><button>send</button></form>\n"
)


def csrf_form(request):
    """CSRF-protected: GET renders the token (and sets the csrftoken cookie), POST needs both."""
    if request.method == "POST":
        return HttpResponse("accepted: " + request.POST.get("message", ""), content_type="text/plain")
    return HttpResponse(FORM.render({}, request))
