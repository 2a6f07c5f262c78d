"""The test suite's settings: the project's own, in the development profile unless the environment
says otherwise (DEBUG defaults to off in factory/settings.py). Set in the environment, so the worker
and web processes the tests start inherit it; tests of the production profile pass DEBUG=0 themselves.
"""

import os

os.environ.setdefault("DEBUG", "1")

from factory.settings import *  # noqa: F403
