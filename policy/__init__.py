"""Jurisdiction profiles (sichuan, bazhong, jinjiang, guangyuan, dalate) and the
conditions they are written in. Plain Python: no nameko, no database."""
from .profile import Profile, ProfileError, available, load_profile, parse_profile  # noqa: F401
