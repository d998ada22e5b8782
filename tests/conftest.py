"""Make the collection importable as ansible_collections.ucops.webex in every test."""

from __future__ import annotations

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_DIR = os.path.join(REPO_ROOT, ".build", "collections")
COLLECTION_LINK = os.path.join(COLLECTIONS_DIR, "ansible_collections", "ucops", "webex")

if not os.path.exists(COLLECTION_LINK):
    os.makedirs(os.path.dirname(COLLECTION_LINK), exist_ok=True)
    os.symlink(REPO_ROOT, COLLECTION_LINK)
if COLLECTIONS_DIR not in sys.path:
    sys.path.insert(0, COLLECTIONS_DIR)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
