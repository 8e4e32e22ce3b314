#ifndef OUTPOST_CCRYPTO_SHIM_H
#define OUTPOST_CCRYPTO_SHIM_H
// OpenSSL's libcrypto (3.x): SHA-256 and Ed25519 through the EVP interface. The agent already
// loads libcrypto through libmosquitto, so this adds no library to the process.
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#endif
