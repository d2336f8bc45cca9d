"""Config helpers: the jurisdiction a deployment serves."""
from nameko import config

from policy import load_profile


def jurisdiction_key():
    key = config.get("JURISDICTION")
    if not key:
        raise RuntimeError("config JURISDICTION is not set (sichuan, bazhong, jinjiang, guangyuan, dalate)")
    return key


def profile():
    return load_profile(jurisdiction_key())
