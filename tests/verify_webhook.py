#!/usr/bin/env python3
"""Verifies one webhook delivery with the Standard Webhooks reference library (PyPI
`standardwebhooks`), independently of comfydash's own signing code.

Usage: verify_webhook.py SECRET < {"headers": {...}, "body": "<raw body>"}
Exit 0: verified (prints the payload's `type`); 1: rejected; 3: the library is not installed.
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    print("standardwebhooks is not installed: python3 -m pip install standardwebhooks", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    secret = sys.argv[1]
    msg = json.load(sys.stdin)
    try:
        payload = Webhook(secret).verify(msg["body"], msg["headers"])
    except Exception as e:  # the library raises its own WebhookVerificationError
        print(f"rejected: {e}", file=sys.stderr)
        return 1
    print(payload["type"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
