// Fetches the JSON API and shows which process answered.
const out = document.getElementById("api");
if (out) {
  fetch("/api/echo?from=js")
    .then((r) => r.json())
    .then((data) => { out.textContent = "pid " + data.pid + ", Python " + data.python; });
}
