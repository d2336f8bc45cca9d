"""Config helpers: the jurisdiction a deployment serves, and settings checked when a service
starts (a value of a few, a positive integer, a number of seconds)."""
from nameko import config

from policy import load_profile


def jurisdiction_key():
    key = config.get("JURISDICTION")
    if not key:
        raise RuntimeError("config JURISDICTION is not set (sichuan, bazhong, jinjiang, guangyuan, dalate)")
    return key


def setting(name, default, check, **options):
    """Setting ``name`` (``default`` when unset), checked by ``check(name, value, **options)``:
    :func:`positive_int`, :func:`seconds` or another of these, each of which names the
    setting in its error."""
    return check(name, config.get(name, default), **options)


def one_of(name, value, choices):
    """``value`` of setting ``name`` if it is one of ``choices``; otherwise the error that
    stops the service at start, naming the setting in Chinese and English."""
    if value not in choices:
        raise ValueError(f"配置项 {name} 只能是 {' 或 '.join(choices)}，而不是 {value!r} / "
                         f"config {name} must be {' or '.join(choices)}, not {value!r}")
    return value


def positive_int(name, value):
    """``value`` of setting ``name`` as an integer ≥ 1; otherwise the error that stops the
    service at start, naming the setting in Chinese and English."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ValueError(f"配置项 {name} 须为正整数，而不是 {value!r} / config {name} must be a positive integer, "
                         f"not {value!r}")
    return number


def seconds(name, value, *, positive=False):
    """``value`` of setting ``name`` as a number of seconds ≥ 0 (> 0 if ``positive``: a
    deadline or a pause); otherwise the error that stops the service at start, naming the
    setting in Chinese and English."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    low_zh, low_en, fits = ("大于 0", "> 0", number > 0) if positive else ("不小于 0", "≥ 0", number >= 0)
    if not fits:  # also refuses NaN
        raise ValueError(f"配置项 {name} 须为{low_zh} 的秒数，而不是 {value!r} / config {name} must be a number of "
                         f"seconds {low_en}, not {value!r}")
    return number


def profile():
    """The jurisdiction's profile; config ``PROFILE_DIR`` (optional) names a directory
    holding the deployment's own copy of ``<jurisdiction>.yaml`` instead of
    ``policy/profiles/`` (the benchmarks load a variant with every signature automatic)."""
    return load_profile(jurisdiction_key(), config.get("PROFILE_DIR") or None)
