"""Parses metrics text from stdin with the prometheus_client package's parsers (the
Prometheus text parser, and the strict OpenMetrics one when the text is OpenMetrics) and
prints the samples as JSON: {"types": {family: type}, "units": {family: unit},
"samples": [[name, labels, value], ...]}. A parse error exits non-zero with its message."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus

text = sys.stdin.read()
parse = openmetrics if text.rstrip().endswith("# EOF") else prometheus
types, units, samples = {}, {}, []
for family in parse(text):
    types[family.name] = family.type
    units[family.name] = family.unit
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
json.dump({"types": types, "units": units, "samples": samples}, sys.stdout)
