"""Async views: Django runs them on the server's event loop under ASGI."""
import asyncio
import json

from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


async def item(request, item_id):
    await asyncio.sleep(0)
    return JsonResponse({"item_id": item_id, "q": request.GET.get("q"), "framework": "django"})


@csrf_exempt
async def create(request):
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    data = json.loads(request.body)
    return JsonResponse({"name": data["name"], "double": data["price"] * 2})


async def stream(request):
    async def lines():
        for i in range(5):
            await asyncio.sleep(0)
            yield f"{i}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")
