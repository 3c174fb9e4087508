"""Reject bad answers before anything is written: one clear line, exit 1 (cookiecutter then removes the folder)."""

import json
import re
import sys

values = json.loads(r"""{{ cookiecutter | tojson }}""")
# API Gateway stops waiting after ~29 s; a Function URL or a direct invoke can wait for Lambda's 900 s maximum.
timeout_cap = 28 if values["api"] in ("http", "rest") else 900


def whole_number(key: str) -> int | None:
    text = str(values[key]).strip()
    return int(text) if text.isdigit() else None


errors = []
if not re.fullmatch(r"[a-z][a-z0-9-]{0,127}", values["project"]):
    errors.append(f"project {values['project']!r} must start with a letter and hold only lowercase letters, digits "
                  "and hyphens (it names the folder and the CloudFormation stack)")
if not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", values["aws_region"]):
    errors.append(f"aws_region {values['aws_region']!r} is not an AWS region name such as us-east-1")
memory = whole_number("memory_size")
if memory is None or not 128 <= memory <= 10240:
    errors.append(f"memory_size {values['memory_size']!r} must be a whole number of MB from 128 to 10240")
timeout = whole_number("timeout")
if timeout is None or not 1 <= timeout <= timeout_cap:
    errors.append(f"timeout {values['timeout']!r} must be a whole number of seconds from 1 to {timeout_cap} "
                  f"with api={values['api']}" + (" (API Gateway gives up after ~29 s)" if timeout_cap == 28 else ""))

if errors:
    print("error: " + "; ".join(errors), file=sys.stderr)
    sys.exit(1)
