"""PyInstaller runtime hook (Linux): AES-CBC from the bundle's OpenSSL, in place of the `cryptography` package.

keyring's Secret Service backend (secretstorage) is the only user of `cryptography` in the bundle: a secret that
travels over D-Bus to or from the desktop keyring is encrypted with AES-CBC under a key from a Diffie-Hellman
exchange, which secretstorage computes itself in Python. For that, `cryptography` brings 12 MB (its Rust library
with a second OpenSSL built in). The bundle leaves it out, and this hook gives secretstorage the four names it
imports (`default_backend`, `Cipher`, `algorithms.AES`, `modes.CBC`) on top of OpenSSL's EVP interface from the
libcrypto that Python's own ssl and hashlib modules load. As with `cryptography`, a CBC cipher does not pad: the
input must be whole blocks, and the caller (secretstorage) pads it. Anything else of `cryptography` fails on use
with a message that says it is left out. tests/unit/packaging/test_secret_service_cipher.py checks the cipher
against `cryptography` and a real Secret Service (gnome-keyring); tests/e2e/test_bundle.py has the bundled worker
keep its credentials in one.
"""

import sys
import types
from pathlib import Path

_BLOCK = 16


class _LeftOut(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"{self.__name__}.{name}: the cryptography package is left out of the Tablao bundle")


_openssl = None  # ctypes.CDLL, loaded at the first use: every program of the bundle runs this hook at its start


def _libcrypto():
    """The libcrypto Python's hashlib uses (the bundle's own copy), with the EVP functions' signatures set."""
    global _openssl
    if _openssl is None:
        import _hashlib  # noqa: F401  (loads the libcrypto it links, so the name below finds that one)
        import ctypes
        import ctypes.util

        bundled = Path(getattr(sys, "_MEIPASS", "/nonexistent"), "libcrypto.so.3")
        name = str(bundled) if bundled.exists() else ctypes.util.find_library("crypto") or "libcrypto.so.3"
        lib = ctypes.CDLL(name)
        p, i = ctypes.c_void_p, ctypes.c_int
        for symbol, result, args in (
            ("EVP_CIPHER_CTX_new", p, []),
            ("EVP_CIPHER_CTX_free", None, [p]),
            ("EVP_CIPHER_CTX_set_padding", i, [p, i]),
            ("EVP_CipherInit_ex", i, [p, p, p, ctypes.c_char_p, ctypes.c_char_p, i]),
            ("EVP_CipherUpdate", i, [p, p, ctypes.POINTER(i), ctypes.c_char_p, i]),
            ("EVP_CipherFinal_ex", i, [p, p, ctypes.POINTER(i)]),
            ("EVP_aes_128_cbc", p, []),
            ("EVP_aes_192_cbc", p, []),
            ("EVP_aes_256_cbc", p, []),
        ):
            function = getattr(lib, symbol)
            function.restype, function.argtypes = result, args
        _openssl = lib
    return _openssl


class AES:
    name = "AES"
    block_size = 128

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError(f"Invalid key size ({len(key) * 8}) for AES.")
        self.key = bytes(key)
        self.key_size = len(key) * 8


class CBC:
    name = "CBC"

    def __init__(self, initialization_vector: bytes) -> None:
        self.initialization_vector = bytes(initialization_vector)


class AlreadyFinalized(Exception):
    pass


class Cipher:
    def __init__(self, algorithm: AES, mode: CBC, backend: object = None) -> None:
        if not isinstance(algorithm, AES) or not isinstance(mode, CBC):
            raise TypeError("the Tablao bundle's cipher does AES in CBC mode only")
        if len(mode.initialization_vector) != _BLOCK:
            raise ValueError(f"Invalid IV size ({len(mode.initialization_vector)}) for CBC.")
        self.algorithm, self.mode = algorithm, mode

    def encryptor(self) -> "_CipherContext":
        return _CipherContext(self, encrypt=True)

    def decryptor(self) -> "_CipherContext":
        return _CipherContext(self, encrypt=False)


class _CipherContext:
    def __init__(self, cipher: Cipher, *, encrypt: bool) -> None:
        import ctypes

        lib, self._ctypes = _libcrypto(), ctypes
        kind = {16: lib.EVP_aes_128_cbc, 24: lib.EVP_aes_192_cbc, 32: lib.EVP_aes_256_cbc}[len(cipher.algorithm.key)]
        self._lib, self._ctx, self._length = lib, lib.EVP_CIPHER_CTX_new(), 0
        if not self._ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        key, iv = cipher.algorithm.key, cipher.mode.initialization_vector
        if lib.EVP_CipherInit_ex(self._ctx, kind(), None, key, iv, int(encrypt)) != 1:
            self._free()
            raise ValueError("OpenSSL refused the AES-CBC key or IV")
        lib.EVP_CIPHER_CTX_set_padding(self._ctx, 0)

    def update(self, data: bytes) -> bytes:
        if not self._ctx:
            raise AlreadyFinalized("Context was already finalized.")
        data = bytes(data)
        ctypes = self._ctypes
        out, written = ctypes.create_string_buffer(len(data) + _BLOCK), ctypes.c_int(0)
        if self._lib.EVP_CipherUpdate(self._ctx, out, ctypes.byref(written), data, len(data)) != 1:
            raise ValueError("OpenSSL failed in EVP_CipherUpdate")
        self._length += len(data)
        return out.raw[: written.value]

    def finalize(self) -> bytes:
        if not self._ctx:
            raise AlreadyFinalized("Context was already finalized.")
        try:
            if self._length % _BLOCK:
                raise ValueError("The length of the provided data is not a multiple of the block length.")
            ctypes = self._ctypes
            out, written = ctypes.create_string_buffer(_BLOCK), ctypes.c_int(0)
            if self._lib.EVP_CipherFinal_ex(self._ctx, out, ctypes.byref(written)) != 1:
                raise ValueError("OpenSSL failed in EVP_CipherFinal_ex")
            return out.raw[: written.value]
        finally:
            self._free()

    def _free(self) -> None:
        if self._ctx:
            self._lib.EVP_CIPHER_CTX_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        self._free()


def _install() -> None:
    if "cryptography" in sys.modules:
        return  # the real package is there (the hook run outside a bundle that has it)
    modules = {
        name: _LeftOut(name)
        for name in (
            "cryptography",
            "cryptography.hazmat",
            "cryptography.hazmat.backends",
            "cryptography.hazmat.primitives",
            "cryptography.hazmat.primitives.ciphers",
            "cryptography.hazmat.primitives.ciphers.algorithms",
            "cryptography.hazmat.primitives.ciphers.modes",
        )
    }
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    modules["cryptography.hazmat.backends"].default_backend = lambda: None
    ciphers = modules["cryptography.hazmat.primitives.ciphers"]
    ciphers.Cipher = Cipher
    modules["cryptography.hazmat.primitives.ciphers.algorithms"].AES = AES
    modules["cryptography.hazmat.primitives.ciphers.modes"].CBC = CBC
    modules["cryptography.exceptions"] = exceptions = _LeftOut("cryptography.exceptions")
    exceptions.AlreadyFinalized = AlreadyFinalized
    modules["cryptography"].exceptions = exceptions
    for name, module in modules.items():
        sys.modules.setdefault(name, module)


if sys.platform.startswith("linux"):
    _install()
