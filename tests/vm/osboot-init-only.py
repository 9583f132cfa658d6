#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# For tests/vm/test-debian-osboot.sh, run in the guest: what "cryptsetup reencrypt --encrypt
# --init-only --header HEADER DEVICE" does, plus ade's token. The CLI refuses "cryptsetup token
# import" once a header carries reencryption metadata ("Operation incompatible with device marked
# for LUKS2 reencryption"), so this calls libcryptsetup itself (ctypes), as the CLI's encrypt does,
# and adds the token between the format and the reencryption's initialisation, as aded will. No
# code of ade's is used.
#
#   osboot-init-only.py DEVICE HEADER UUID KEYFILE TOKEN_JSON_FILE
import ctypes
import sys

device, header, uuid, keyfile, token_file = sys.argv[1:6]
key = open(keyfile, "rb").read()
token = open(token_file, "rb").read()
lib = ctypes.CDLL("libcryptsetup.so.12", use_errno=True)


class Pbkdf(ctypes.Structure):
    _fields_ = [("type", ctypes.c_char_p), ("hash", ctypes.c_char_p), ("time_ms", ctypes.c_uint32),
                ("iterations", ctypes.c_uint32), ("max_memory_kb", ctypes.c_uint32),
                ("parallel_threads", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class Luks2(ctypes.Structure):
    _fields_ = [("pbkdf", ctypes.POINTER(Pbkdf)), ("integrity", ctypes.c_char_p),
                ("integrity_params", ctypes.c_void_p), ("data_alignment", ctypes.c_size_t),
                ("data_device", ctypes.c_char_p), ("sector_size", ctypes.c_uint32),
                ("label", ctypes.c_char_p), ("subsystem", ctypes.c_char_p)]


class Reencrypt(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("direction", ctypes.c_int), ("resilience", ctypes.c_char_p),
                ("hash", ctypes.c_char_p), ("data_shift", ctypes.c_uint64), ("max_hotzone_size", ctypes.c_uint64),
                ("device_size", ctypes.c_uint64), ("luks2", ctypes.POINTER(Luks2)), ("flags", ctypes.c_uint32)]


CRYPT_PBKDF_NO_BENCHMARK = 1 << 1
CRYPT_REENCRYPT_INITIALIZE_ONLY = 1 << 0
CRYPT_REENCRYPT_ENCRYPT = 1
CRYPT_REENCRYPT_FORWARD = 0


def check(r, what):
    if r < 0:
        sys.exit("%s: %s" % (what, ctypes.c_int(-r).value))
    return r


cd = ctypes.c_void_p()
check(lib.crypt_init_data_device(ctypes.byref(cd), header.encode(), device.encode()), "crypt_init_data_device")
pbkdf = Pbkdf(b"pbkdf2", b"sha512", 0, 1000, 0, 0, CRYPT_PBKDF_NO_BENCHMARK)
check(lib.crypt_set_pbkdf_type(cd, ctypes.byref(pbkdf)), "crypt_set_pbkdf_type")
luks2 = Luks2(None, None, None, 0, None, 512, None, None)
check(lib.crypt_format(cd, b"LUKS2", b"aes", b"xts-plain64", uuid.encode(), None, ctypes.c_size_t(64),
                       ctypes.byref(luks2)), "crypt_format")
slot = check(lib.crypt_keyslot_add_by_volume_key(cd, -1, None, ctypes.c_size_t(0), key, ctypes.c_size_t(len(key))),
             "crypt_keyslot_add_by_volume_key")
check(lib.crypt_token_json_set(cd, -1, token), "crypt_token_json_set")
params = Reencrypt(CRYPT_REENCRYPT_ENCRYPT, CRYPT_REENCRYPT_FORWARD, b"checksum", b"sha256", 0, 0, 0,
                   ctypes.pointer(luks2), CRYPT_REENCRYPT_INITIALIZE_ONLY)
check(lib.crypt_reencrypt_init_by_passphrase(cd, None, key, ctypes.c_size_t(len(key)), -1, slot, b"aes",
                                             b"xts-plain64", ctypes.byref(params)), "crypt_reencrypt_init_by_passphrase")
lib.crypt_free(cd)
print("keyslot %d" % slot)
