"""Remove the files the chosen options do not use, and nothing else."""

import json
from pathlib import Path

values = json.loads(r"""{{ cookiecutter | tojson }}""")
# Each API's sample events are events/<api>-*.json; keep only the chosen API's.
EVENT_PREFIXES = {"http": "http-api-", "rest": "rest-api-", "function-url": "function-url-", "none": None}

for api, prefix in EVENT_PREFIXES.items():
    if prefix and api != values["api"]:
        for event in Path("events").glob(f"{prefix}*.json"):
            event.unlink()
