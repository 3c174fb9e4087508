"""Print a pip.conf for the build container: the host's index settings (`pip config list` = config files + PIP_* env)
minus local paths and file:// URLs, which do not exist inside the container; CAs come from the system store."""

import re
import subprocess
import sys

KEYS = {"index-url", "extra-index-url", "trusted-host", "proxy", "timeout", "default-timeout", "retries"}
listing = subprocess.run(
    [sys.executable, "-m", "pip", "config", "list"], check=True, capture_output=True, text=True
).stdout
settings = {}
for key, value in re.findall(r"^[^=]*\.([\w-]+)='(.*)'$", listing, re.MULTILINE):
    kept = [v for v in value.split() if not v.startswith(("file:", "/"))]
    if key in KEYS and kept:
        settings[key] = " ".join(kept)
print("[global]\ncert = /etc/ssl/certs/ca-certificates.crt")
print("\n".join(f"{key} = {value}" for key, value in sorted(settings.items())))
