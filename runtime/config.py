"""Config helpers: the jurisdiction a deployment serves."""
from nameko import config

from policy import load_profile


def jurisdiction_key():
    key = config.get("JURISDICTION")
    if not key:
        raise RuntimeError("config JURISDICTION is not set (sichuan, bazhong, jinjiang, guangyuan, dalate)")
    return key


def profile():
    """The jurisdiction's profile; config ``PROFILE_DIR`` (optional) names a directory
    holding the deployment's own copy of ``<jurisdiction>.yaml`` instead of
    ``policy/profiles/`` (the benchmarks load a variant with every signature automatic)."""
    return load_profile(jurisdiction_key(), config.get("PROFILE_DIR") or None)
