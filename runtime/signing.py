"""Signed opinions: an opinion is an official act of an agency.

Each agency service signs the opinions it issues with its own Ed25519 key; the
receiver verifies the signature against the public keys it trusts before it acts.
A forged or altered opinion is refused (dead-lettered), never applied.

Keys live in ``KEYS_DIR`` (config; default ``var/keys``): ``<service>.pem`` is the
service's private key, ``<service>.pub.pem`` the public key others trust. A service
whose private key is missing creates one at start (development); in production mount
the private key as a secret and distribute only the public keys.
"""
import base64
import hashlib
import json
import logging
import os
import threading

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)
ALGORITHM = "ed25519"
DEFAULT_KEYS_DIR = "var/keys"


class SignatureInvalid(Exception):
    """The message's signature is missing, from an unknown key, or does not verify."""


def canonical(payload):
    """The bytes that are signed: the payload without its signature, keys sorted."""
    body = {k: v for k, v in payload.items() if k != "signature"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def digest(payload):
    return hashlib.sha256(canonical(payload)).hexdigest()


class KeyRing:
    """The service's own signing key and the public keys it trusts."""

    _lock = threading.Lock()

    def __init__(self, keys_dir, service):
        self.keys_dir = keys_dir
        self.service = service
        self._private = None
        self._trusted = {}

    # -- own key --------------------------------------------------------------------------
    def private_key(self):
        if self._private is None:
            path = os.path.join(self.keys_dir, f"{self.service}.pem")
            with self._lock:
                if not os.path.exists(path):
                    self._create(path)
                with open(path, "rb") as fh:
                    self._private = serialization.load_pem_private_key(fh.read(), password=None)
                self._publish(self._private)
        return self._private

    def _create(self, path):
        """Create the key unless another process just did (the first link wins)."""
        os.makedirs(self.keys_dir, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
            log.warning("created a signing key for %s in %s (development); mount a real key in production",
                        self.service, self.keys_dir)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)

    def _publish(self, private):
        """Write the public key others trust, derived from the private key in place."""
        pub_path = os.path.join(self.keys_dir, f"{self.service}.pub.pem")
        pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        try:
            with open(pub_path, "rb") as fh:
                if fh.read() == pem:
                    return
        except FileNotFoundError:
            pass
        tmp = f"{pub_path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, pub_path)

    def sign(self, payload):
        signature = self.private_key().sign(canonical(payload))
        return {"key_id": self.service, "algorithm": ALGORITHM,
                "value": base64.b64encode(signature).decode("ascii")}

    # -- trusted keys -----------------------------------------------------------------------
    def public_key(self, key_id):
        key = self._trusted.get(key_id)
        if key is None:
            if not key_id.replace("-", "").replace("_", "").isalnum():
                raise SignatureInvalid(f"malformed key id {key_id!r}")
            path = os.path.join(self.keys_dir, f"{key_id}.pub.pem")
            if not os.path.exists(path):
                raise SignatureInvalid(f"no trusted public key for {key_id!r}")
            with open(path, "rb") as fh:
                key = serialization.load_pem_public_key(fh.read())
            if not isinstance(key, Ed25519PublicKey):
                raise SignatureInvalid(f"key {key_id!r} is not an Ed25519 key")
            self._trusted[key_id] = key
        return key

    def verify(self, payload, expected_signer):
        """Check the signature and that it is the expected agency service's."""
        signature = payload.get("signature")
        if not signature:
            raise SignatureInvalid("the opinion is not signed")
        if signature.get("algorithm") != ALGORITHM:
            raise SignatureInvalid(f"unsupported algorithm {signature.get('algorithm')!r}")
        if signature.get("key_id") != expected_signer:
            raise SignatureInvalid(f"signed by {signature.get('key_id')!r}, expected {expected_signer!r}")
        try:
            self.public_key(signature["key_id"]).verify(base64.b64decode(signature["value"]), canonical(payload))
        except (InvalidSignature, ValueError) as exc:
            raise SignatureInvalid("the signature does not match the opinion") from exc
        return True


_rings = {}


def keyring(service):
    from nameko import config
    keys_dir = config.get("KEYS_DIR") or DEFAULT_KEYS_DIR
    ring = _rings.get((keys_dir, service))
    if ring is None:
        ring = _rings[(keys_dir, service)] = KeyRing(keys_dir, service)
    return ring
